"""`pip install ./client` in a fresh virtualenv installs the client, httpx and what httpx needs.

Nothing of the server: the acceptance point of the client's own distribution (client/).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"

# Run with the new virtualenv's Python: the distributions that `root` requires, transitively,
# with their markers evaluated there (pip's own copy of packaging reads them; the fresh
# virtualenv has nothing else).
_CLOSURE = """
import json, sys
from importlib.metadata import distribution
from pip._vendor.packaging.requirements import Requirement
from pip._vendor.packaging.utils import canonicalize_name
seen, todo = set(), [sys.argv[1]]
while todo:
    name = canonicalize_name(todo.pop())
    if name in seen:
        continue
    seen.add(name)
    for line in distribution(name).requires or []:
        requirement = Requirement(line)
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            todo.append(requirement.name)
print(json.dumps(sorted(seen)))
"""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _installed(python: Path) -> set[str]:
    listing = subprocess.run(
        [python, "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {_canonical(entry["name"]) for entry in json.loads(listing.stdout)}


def _requirements_of(python: Path, root: str) -> set[str]:
    result = subprocess.run(
        [python, "-c", _CLOSURE, root], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(result.stdout))


def _server_lock() -> set[str]:
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==", RUNTIME_LOCK.read_text(), re.MULTILINE)
    return {_canonical(name) for name in pins}


@pytest.mark.slow
def test_pip_install_client_in_a_fresh_venv_brings_httpx_and_nothing_of_the_server(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    before = _installed(python)

    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", ROOT / "client"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )

    assert install.returncode == 0, install.stderr
    added = _installed(python) - before
    httpx_and_its_own = _requirements_of(python, "httpx")
    assert "httpx" in httpx_and_its_own
    assert added == {"wasmwiz-client"} | httpx_and_its_own
    assert _requirements_of(python, "wasmwiz-client") == {"wasmwiz-client"} | httpx_and_its_own
    # Spelled out: of what the server's runtime lock holds, only httpx's share came along.
    server_only = _server_lock() - httpx_and_its_own - {"pip", "setuptools"}
    assert {"wasmtime", "fastapi", "sqlalchemy", "uvicorn", "asyncpg"} <= server_only
    assert added & server_only == set()
    assert "wasmwiz" not in added
