"""Builds each example once per session, where its toolchain exists; SQLite for the server."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wasmwiz.db'}"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed: the example that needs it cannot run here")
    return path


def _build(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="session")
def go_example(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], list[str]]:
    built: list[str] = []

    def build() -> list[str]:
        if not built:
            go = need("go")
            binary = tmp_path_factory.mktemp("go") / "wasmwiz-example"
            # GOPROXY=off: the example uses the standard library only, so nothing is fetched.
            _build([go, "build", "-o", str(binary), "."], EXAMPLES / "go", {"GOPROXY": "off"})
            built.append(str(binary))
        return built

    return build


@pytest.fixture(scope="session")
def rust_example(tmp_path_factory: pytest.TempPathFactory) -> Callable[[], list[str]]:
    built: list[str] = []

    def build() -> list[str]:
        if not built:
            cargo = need("cargo")
            target = tmp_path_factory.mktemp("rust-target")
            _build(
                [cargo, "build", "--offline", "--release", "--quiet", "--target-dir", str(target)],
                EXAMPLES / "rust",
            )
            built.append(str(target / "release" / "wasmwiz-example"))
        return built

    return build
