"""A live server on SQLite and API keys for it: these tests are about the client, not storage
(the modules on stored modules ask for both databases themselves)."""

from __future__ import annotations

import asyncio
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
