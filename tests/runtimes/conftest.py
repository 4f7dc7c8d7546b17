"""Fixtures for the runtime tests: the committed runtimes, prepared once in a real Sandbox."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

import pytest

from wasmwiz.sandbox import CompiledModule, RunRequest, RunResult, Sandbox

RUNTIMES = resources.files("wasmwiz").joinpath("runtimes")


def manifest() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(RUNTIMES.joinpath("runtimes.json").read_text())
    return loaded


@pytest.fixture(scope="session")
def runtime_sandbox() -> Iterator[Sandbox]:
    with Sandbox(max_concurrency=2, max_queue=16) as shared:
        yield shared


@pytest.fixture(scope="session")
def prepared(runtime_sandbox: Sandbox) -> dict[str, CompiledModule]:
    """Each runtime compiled once (about a second for QuickJS's 1 MB)."""
    return {
        entry["name"]: runtime_sandbox.prepare(RUNTIMES.joinpath(entry["file"]).read_bytes())
        for entry in manifest()["runtimes"]
    }


RunProgram = Callable[..., RunResult]


@pytest.fixture
def run_program(
    runtime_sandbox: Sandbox, prepared: dict[str, CompiledModule], request: pytest.FixtureRequest
) -> RunProgram:
    """Runs `program` (the runtime's stdin) under the default limits, and prints how long."""

    def run(runtime: str, program: str, *args: str) -> RunResult:
        result = runtime_sandbox.run(
            prepared[runtime], RunRequest(stdin=program.encode(), args=args)
        )
        print(  # no fuel figure: a run without a fuel budget is not metered
            f"{request.node.name}: {result.outcome.value} in "
            f"{result.duration_seconds * 1000:.1f} ms"
        )
        return result

    return run
