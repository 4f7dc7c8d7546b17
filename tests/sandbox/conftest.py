"""Fixtures for the sandbox tests: one shared Sandbox and the .wat fixtures beside this file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from wasmwiz.sandbox import Sandbox

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_wat(name: str) -> bytes:
    """The text of tests/sandbox/fixtures/<name>.wat."""
    return (FIXTURES / f"{name}.wat").read_bytes()


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(max_concurrency=4, max_queue=64) as shared:
        yield shared
