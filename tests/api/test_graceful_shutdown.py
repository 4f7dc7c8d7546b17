"""Stopping the service right after executions loses no usage record."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from tests.api import wat
from tests.fixtures.app import TEST_SALT, Account, free_port
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import UsageLog

pytestmark = pytest.mark.anyio

EXECUTIONS = 40


async def test_sigterm_right_after_executions_keeps_every_usage_row(
    tmp_path: Path, migrated_database_url: str, account: Account
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": migrated_database_url,
        "API_SALT": TEST_SALT,
        "VAR_DIR": str(tmp_path / "var"),
        # A long interval: the records can only reach the database through the final flush.
        "USAGE_FLUSH_INTERVAL": "60",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(  # noqa: ASYNC220 - the server must outlive no test loop
        [sys.executable, "-m", "wasmwiz.cli.main", "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if (await client.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "the server did not start"
                await asyncio.sleep(0.05)
            for _ in range(EXECUTIONS):
                response = await client.post(
                    "/api/v1/execute",
                    headers=account.headers,
                    files={"wasm": ("hello.wat", wat.HELLO.encode())},
                )
                assert response.json()["status"] == "success"
        process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is normal.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()

    database = Database(migrated_database_url)
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(UsageLog).where(UsageLog.user_id == account.user_id)
        )
    await database.dispose()
    assert count == EXECUTIONS
