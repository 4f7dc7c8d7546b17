"""Stopping the service right after executions loses no usage record."""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import func, select

from tests.api import wat
from tests.fixtures.app import Account, ServerProcess
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import UsageLog

pytestmark = pytest.mark.anyio

EXECUTIONS = 40


async def test_sigterm_right_after_executions_keeps_every_usage_row(
    process_factory: Callable[..., ServerProcess], migrated_database_url: str, account: Account
) -> None:
    # A long flush interval: the records can only reach the database in the final flush.
    server = process_factory(usage_flush_interval="60")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for _ in range(EXECUTIONS):
            response = await client.post(
                "/api/v1/execute",
                headers=account.headers,
                files={"wasm": ("hello.wat", wat.HELLO.encode())},
            )
            assert response.json()["status"] == "success"
    # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is normal.
    assert server.stop() in (0, -signal.SIGTERM)

    database = Database(migrated_database_url)
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(UsageLog).where(UsageLog.user_id == account.user_id)
        )
    await database.dispose()
    assert count == EXECUTIONS
