"""`wasmwiz runtimes`: list, publish and unpublish the public runtimes (administrators)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from wasmwiz.cli.admin import _session
from wasmwiz.config import Settings
from wasmwiz.persistence import Database
from wasmwiz.sandbox import Sandbox
from wasmwiz.services import public_runtimes
from wasmwiz.services.configured import sandbox_limits
from wasmwiz.services.public_runtimes import RuntimeView

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, int]]
Wrap = Callable[[Command], Callable[[Settings, argparse.Namespace], int]]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser], wrap: Wrap) -> None:
    runtimes = commands.add_parser(
        "runtimes",
        help="the public runtimes every account may run by name (module=lua)",
        description="The server installs the runtimes it ships at start (INSTALL_BUNDLED_"
        "RUNTIMES); publish others here. A published version never changes.",
    )
    actions = runtimes.add_subparsers(dest="runtimes_command", required=True)
    listing = actions.add_parser("list", help="every published version")
    listing.set_defaults(handler=wrap(list_runtimes))
    install = actions.add_parser("install", help="publish the shipped runtimes the database lacks")
    install.set_defaults(handler=wrap(install_bundled))
    publish = actions.add_parser("publish", help="validate, compile and publish a module")
    publish.add_argument("module", type=Path, help="a .wasm or .wat file")
    publish.add_argument("--name", required=True, help="e.g. python")
    publish.add_argument("--version", required=True, help="e.g. 3.12.1")
    publish.add_argument("--language", required=True, help="e.g. Python")
    publish.add_argument("--license", required=True, help="an SPDX expression, e.g. MIT")
    publish.add_argument(
        "--usage", default="stdin", help="how a program reaches it (default: stdin)"
    )
    publish.set_defaults(handler=wrap(publish_runtime))
    unpublish = actions.add_parser("unpublish", help="remove a published version")
    unpublish.add_argument("name")
    unpublish.add_argument("version")
    unpublish.set_defaults(handler=wrap(unpublish_runtime))


def _print(views: list[RuntimeView]) -> None:
    print(f"{'NAME':12} {'VERSION':12} {'LANGUAGE':12} {'SIZE':>10}  LATEST  ID")
    for view in views:
        latest = "yes" if view.latest else ""
        print(
            f"{view.name:12} {view.version:12} {view.language:12} {view.size:>10,}  "
            f"{latest:6}  {view.id}"
        )


async def list_runtimes(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        views = await public_runtimes.list_runtimes(session)
    _print(views)
    return 0


async def install_bundled(settings: Settings, args: argparse.Namespace) -> int:
    database = Database(settings.effective_database_url)
    try:
        installed = await public_runtimes.install_bundled(database)
    finally:
        await database.dispose()
    print("installed " + ", ".join(installed) if installed else "every shipped runtime is there")
    return 0


async def publish_runtime(settings: Settings, args: argparse.Namespace) -> int:
    data = args.module.read_bytes()
    with Sandbox(limits=sandbox_limits(settings), max_concurrency=1) as sandbox:
        async with _session(settings) as session:
            view = await public_runtimes.publish(
                session,
                sandbox,
                name=args.name,
                version=args.version,
                data=data,
                language=args.language,
                usage=args.usage,
                license=args.license,
            )
    print(f"published {view.name}@{view.version}: module={view.name} runs it")
    _print([view])
    return 0


async def unpublish_runtime(settings: Settings, args: argparse.Namespace) -> int:
    async with _session(settings) as session:
        await public_runtimes.unpublish(session, args.name, args.version)
    print(f"unpublished {args.name}@{args.version}")
    return 0
