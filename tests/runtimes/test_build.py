"""The committed runtimes are exactly what runtimes/build.py builds from the pinned sources."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.toolchain
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_build_check_reproduces_the_committed_files() -> None:
    if importlib.util.find_spec("ziglang") is None:
        pytest.skip("ziglang is not installed (make install): runtimes/build.py cannot compile")

    # Downloads two sdists (about 7 MB) and compiles them: tens of seconds, more on a
    # machine that has not built WASI libc with this Zig before.
    result = subprocess.run(
        [sys.executable, str(ROOT / "runtimes" / "build.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=850,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "exactly what this script builds" in result.stdout
