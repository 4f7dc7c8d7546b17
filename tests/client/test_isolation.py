"""The client package stands alone: importing it loads nothing of the server."""

from __future__ import annotations

import subprocess
import sys

SERVER_PACKAGES = (
    "fastapi",
    "starlette",
    "sqlalchemy",
    "wasmtime",
    "pydantic",
    "redis",
    "alembic",
)


def test_importing_the_client_loads_only_httpx() -> None:
    code = (
        "import sys, wasmwiz_client\n"
        f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({SERVER_PACKAGES!r}))\n"
        "server = sorted(m for m in sys.modules if m.split('.')[0] == 'wasmwiz')\n"
        "print(loaded, server)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[] []"
