"""`wasmwiz openapi`: print the OpenAPI document the app serves (docs/openapi.json is this)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from wasmwiz.config import Settings


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    spec = commands.add_parser("openapi", help="print the OpenAPI document as JSON")
    spec.add_argument("--output", help="write it to this file instead of stdout")
    spec.set_defaults(handler=write_openapi, needs_schema=False)


def render(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def write_openapi(settings: Settings, args: argparse.Namespace) -> int:
    # Building the app starts nothing: the lifespan (database, sandbox) never runs here.
    from wasmwiz.app import create_app  # the whole web app: only this command needs it

    text = render(create_app(settings).openapi())
    if args.output:
        with open(args.output, "w", encoding="utf-8") as file:
            file.write(text)
    else:
        sys.stdout.write(text)
    return 0
