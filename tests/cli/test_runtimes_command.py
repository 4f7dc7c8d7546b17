"""`wasmwiz runtimes`: install the shipped ones, publish, list and unpublish, on a real database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.api import wat
from tests.api.test_runtimes import BUNDLED, runtime_rows
from tests.fixtures.database import run_outside_loop
from wasmwiz.cli.main import main


def test_the_cli_publishes_lists_and_unpublishes(
    environment: Path, capsys: pytest.CaptureFixture[str], migrated_database_url: str
) -> None:
    module = environment / "hello.wat"
    module.write_text(wat.printing("hello from a runtime\n"))

    assert main(["runtimes", "install"]) == 0
    assert "installed" in capsys.readouterr().out
    assert main(["runtimes", "install"]) == 0
    assert "every shipped runtime is there" in capsys.readouterr().out
    publish = ["runtimes", "publish", str(module), "--name", "hello", "--version", "1.0"]
    assert main([*publish, "--language", "WAT", "--license", "MIT"]) == 0
    assert main([*publish, "--language", "WAT", "--license", "MIT"]) == 1  # never changes
    capsys.readouterr()
    assert main(["runtimes", "list"]) == 0
    listed = capsys.readouterr().out
    assert "hello" in listed
    assert "lua" in listed
    assert main(["runtimes", "unpublish", "hello", "1.0"]) == 0
    assert main(["runtimes", "unpublish", "hello", "1.0"]) == 1
    count = run_outside_loop(lambda: asyncio.run(runtime_rows(migrated_database_url)))
    assert count == len(BUNDLED)
