"""One real service for the security suite, and a fresh API key for every test.

The server runs on SQLite: the database is not what these tests attack. Its limits are
the defaults except where a small figure keeps the suite fast (1 s runs, 32 MiB memory,
a 2 s compile budget).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.app import Account, LiveServer, create_account, make_settings, start_server
from tests.fixtures.database import run_outside_loop
from wasmwiz.persistence.migrate import upgrade

MiB = 1024 * 1024
SECURITY_SETTINGS: dict[str, Any] = {
    "execution_timeout": 1.0,
    "memory_limit": 32 * MiB,
    "compile_timeout": 2.0,
    "compile_workers": 2,
    "max_concurrent_executions": 8,
    "max_queued_executions": 256,
}


def start_security_server(base: Path, **overrides: Any) -> LiveServer:
    url = f"sqlite:///{base / 'wasmwiz.db'}"
    run_outside_loop(lambda: upgrade(url))
    return start_server(make_settings(base, url, **{**SECURITY_SETTINGS, **overrides}))


def new_accounts(server: LiveServer, count: int) -> list[Account]:
    """Created before any run: SQLite would otherwise be busy with usage writes."""
    url = server.settings.effective_database_url

    async def create() -> list[Account]:
        return [await create_account(url) for _ in range(count)]

    return run_outside_loop(lambda: asyncio.run(create()))


@pytest.fixture(scope="session")
def security_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = start_security_server(tmp_path_factory.mktemp("security"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def security_accounts(security_server: LiveServer) -> Iterator[Account]:
    """Keys used in turn, so no one key comes near its tier's per-minute limit."""
    return itertools.cycle(new_accounts(security_server, 16))


@pytest.fixture
def api(
    security_server: LiveServer, security_accounts: Iterator[Account]
) -> Iterator[httpx.Client]:
    """A client for the security server, authenticated with the next key."""
    account = next(security_accounts)
    with httpx.Client(base_url=security_server.url, headers=account.headers, timeout=60) as http:
        yield http
