"""A scratch copy of the tree, and the gate's stages run against it with our own virtualenv."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
_NOT_COPIED = shutil.ignore_patterns(
    ".git", ".venv", "var", "reports", "__pycache__", ".pytest_cache", ".hypothesis",
    ".coverage", ".coverage.*", "htmlcov", "node_modules", "dist", "build", "*.egg-info",
)  # fmt: skip


def load_ci_script(name: str) -> ModuleType:
    """The script .ci/NAME.py, imported as a module for its unit tests."""
    spec = importlib.util.spec_from_file_location(name, ROOT / ".ci" / f"{name}.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class StageResult:
    returncode: int
    output: str


class ScratchTree:
    """A copy of the working tree in `path`, its `.venv` a link to the real one.

    The packages are installed editable from the real tree, so every stage runs with the
    copy's `src` and `client/src` first on PYTHONPATH; make is told not to reinstall (`-o`
    on the stamp).
    """

    def __init__(self, path: Path) -> None:
        shutil.copytree(ROOT, path, ignore=_NOT_COPIED, symlinks=True)
        (path / ".venv").symlink_to(ROOT / ".venv")
        self.path = path

    def write(self, relative: str, text: str) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)

    def replace(self, relative: str, old: str, new: str) -> None:
        target = self.path / relative
        text = target.read_text()
        assert old in text, f"{relative} no longer contains {old!r}"
        target.write_text(text.replace(old, new, 1))

    def stage(self, target: str, *variables: str, env: dict[str, str] | None = None) -> StageResult:
        """`make TARGET` in the copy, as .ci/run would run it (with its service variables)."""
        environment = {
            name: value
            for name, value in os.environ.items()
            # The outer pytest's coverage and bookkeeping are not the copy's business.
            if not name.startswith(("COV_CORE_", "COVERAGE_", "PYTEST_"))
        }
        environment["PYTHONPATH"] = os.pathsep.join(
            str(self.path / tree) for tree in ("src", "client/src")
        )
        environment.update(env or {})
        command = [
            "make", "--no-print-directory", "-o", ".venv/.installed-stamp", target, *variables
        ]  # fmt: skip
        before = _editable_install()
        completed = subprocess.run(
            command,
            cwd=self.path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        # The virtualenv is shared: a stage that reinstalled the package from the copy would
        # leave everyone else importing it. Fail loudly rather than quietly.
        assert _editable_install() == before, "a stage reinstalled the package from the copy"
        return StageResult(completed.returncode, completed.stdout + completed.stderr)


def _editable_install() -> str:
    """Where the shared virtualenv's editable installs of wasmwiz and wasmwiz-client point."""
    return "".join(
        path.read_text()
        for path in sorted((ROOT / ".venv").glob("lib/python*/site-packages/__editable__*wasmwiz*"))
    )
