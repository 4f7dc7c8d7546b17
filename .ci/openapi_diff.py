"""Compare two OpenAPI documents by meaning: each operation's parameters, security, request
body and responses, with every `$ref` resolved, so moving a schema into or out of
`components` is no difference and changing what it says is one.

    .venv/bin/python .ci/openapi_diff.py OLD.json NEW.json
    git show main:docs/openapi.json > /tmp/old.json && .venv/bin/python .ci/openapi_diff.py \
        /tmp/old.json docs/openapi.json

Prints one line per difference (the JSON path, then old and new) and exits 1 if any.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

_OPERATION_PARTS = ("parameters", "security", "requestBody", "responses")
_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def resolve(document: dict[str, Any], node: Any) -> Any:
    """`node` with each `$ref` replaced by what it points at (recursively; siblings of a
    `$ref` are kept beside the target's keywords)."""
    if isinstance(node, list):
        return [resolve(document, item) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target: Any = document
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        siblings = {key: value for key, value in node.items() if key != "$ref"}
        return resolve(document, {**target, **siblings})
    return {key: resolve(document, value) for key, value in node.items()}


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        f"{method.upper()} {path}": {
            part: resolve(document, operation[part])
            for part in _OPERATION_PARTS
            if part in operation
        }
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in _METHODS
    }


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for key in sorted(old.keys() | new.keys(), key=str):
            at = f"{where}/{key}"
            if key not in new:
                found.append(f"{at}: removed (was {_short(old[key])})")
            elif key not in old:
                found.append(f"{at}: added {_short(new[key])}")
            else:
                found.extend(differences(old[key], new[key], at))
        return found
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            line
            for i, pair in enumerate(zip(old, new, strict=True))
            for line in differences(*pair, f"{where}/{i}")
        ]
    if old != new or type(old) is not type(new):
        return [f"{where}: {_short(old)} -> {_short(new)}"]
    return []


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def main(argv: list[str]) -> int:
    old, new = (json.loads(Path(name).read_text()) for name in argv[1:3])
    found = differences(operations(old), operations(new))
    for line in found:
        print(line)
    print(
        f"{len(found)} difference(s) in the operations' parameters, security, bodies and responses"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
