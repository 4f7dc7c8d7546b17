"""A live server on SQLite and API keys for it: these tests are about the client, not storage
(the modules on stored modules ask for both databases themselves)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.app import Account, LiveServer, ServerFactory, create_account
from tests.fixtures.database import run_outside_loop


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wasmwiz.db'}"


def new_account(database_url: str, tier: str = "pro") -> Account:
    return run_outside_loop(lambda: asyncio.run(create_account(database_url, tier=tier)))


@pytest.fixture
def server(server_factory: ServerFactory) -> LiveServer:
    return server_factory()


@pytest.fixture
def api_key(migrated_database_url: str) -> str:
    return new_account(migrated_database_url).api_key


WASMWIZ = [sys.executable, "-m", "wasmwiz.cli.main"]


def remote(
    server: LiveServer | None,
    api_key: str | None,
    *args: str,
    stdin: bytes = b"",
    cwd: Path | None = None,
    url: str | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """`wasmwiz remote ARGS` as a shell runs it: a subprocess with only the given
    WASMWIZ_ settings, byte streams and an exit code."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("WASMWIZ_")}
    if server is not None or url is not None:  # `url`: a server that is not there
        env["WASMWIZ_URL"] = server.url if server is not None else str(url)
    if api_key is not None:
        env["WASMWIZ_API_KEY"] = api_key
    return subprocess.run(
        [*WASMWIZ, "remote", *args],
        input=stdin,
        capture_output=True,
        env=env,
        cwd=cwd,
        timeout=60,
        check=False,
    )
