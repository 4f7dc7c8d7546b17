"""A live server on SQLite and API keys for it: these tests are about the client, not storage
(the modules on stored modules ask for both databases themselves)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.routing import Match

from tests.fixtures.app import Account, LiveServer, ServerFactory, create_account
from tests.fixtures.database import run_outside_loop
from wasmwiz.api import build_api_router


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


def _serves_batches() -> bool:
    # The routes the app mounts (create_app includes this router), asked as Starlette
    # routes a request, without building an app: building one needs settings, which
    # nothing may make at import.
    scope = {"type": "http", "method": "POST", "path": "/api/v1/execute/batch", "root_path": ""}
    return any(route.matches(scope)[0] is Match.FULL for route in build_api_router().routes)


# The batch endpoint is written to a contract the client already follows; its tests run
# as soon as the server has the route.
needs_batch_route = pytest.mark.skipif(
    not _serves_batches(), reason="the server has no POST /api/v1/execute/batch route yet"
)
