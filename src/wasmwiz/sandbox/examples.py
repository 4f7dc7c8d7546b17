"""The example modules bundled with WasmWiz, served to users as starting points."""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"[a-z0-9_-]+")


def example_names() -> list[str]:
    """Names of the bundled examples, sorted (without the .wat suffix)."""
    folder = resources.files("wasmwiz").joinpath("examples")
    return sorted(
        entry.name.removesuffix(".wat") for entry in folder.iterdir() if entry.name.endswith(".wat")
    )


def load_example(name: str) -> bytes:
    """Return the WebAssembly text of the bundled example `name` (e.g. "hello").

    Raises KeyError for a name that is not a bundled example.
    """
    # Checked against a strict pattern first: the name may come from a request.
    if not _NAME.fullmatch(name):
        raise KeyError(name)
    resource = resources.files("wasmwiz").joinpath("examples", f"{name}.wat")
    if not resource.is_file():
        raise KeyError(name)
    return resource.read_bytes()
