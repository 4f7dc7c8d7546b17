"""SIGTERM drains: the run in flight finishes and is recorded, new work gets 503."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.api import wat
from tests.fixtures.app import Account
from tests.fixtures.database import run_outside_loop
from tests.ops.metrics_text import sample
from tests.ops.process import SLEEP_2S, serve_process
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import UsageLog

pytestmark = pytest.mark.slow


def _usage_row(database_url: str, execution_id: uuid.UUID) -> UsageLog | None:
    async def fetch() -> UsageLog | None:
        database = Database(database_url)
        try:
            async with database.session() as session:
                return await session.get(UsageLog, execution_id)
        finally:
            await database.dispose()

    return run_outside_loop(lambda: asyncio.run(fetch()))


def test_sigterm_lets_the_running_execution_finish_and_refuses_new_work(
    tmp_path: Path, migrated_database_url: str, ops_account: Account
) -> None:
    env = {
        "EXECUTION_TIMEOUT": "10",
        # Only the final flush at shutdown can write the row.
        "USAGE_FLUSH_INTERVAL": "60",
        "SHUTDOWN_GRACE_PERIOD": "30",
    }
    with (
        serve_process(tmp_path, migrated_database_url, env=env) as (process, url),
        ThreadPoolExecutor(max_workers=1) as pool,
    ):
        long_run = pool.submit(
            httpx.post,
            f"{url}/api/v1/execute",
            headers=ops_account.headers,
            files={"wasm": ("sleep.wat", SLEEP_2S.encode())},
            timeout=60,
        )
        deadline = time.monotonic() + 20
        while sample(httpx.get(f"{url}/metrics").text, "wasmwiz_executions_in_flight") < 1:
            assert time.monotonic() < deadline, "the execution never started"
            time.sleep(0.02)

        process.send_signal(signal.SIGTERM)
        # The two-second run is still going: the server is draining, not gone.
        deadline = time.monotonic() + 5
        while (ready := httpx.get(f"{url}/health/ready")).status_code == 200:
            assert time.monotonic() < deadline, "readiness never turned 503"
            time.sleep(0.01)
        assert ready.status_code == 503
        assert ready.json()["checks"] == [{"name": "lifecycle", "ok": False, "detail": "draining"}]
        refused = httpx.post(
            f"{url}/api/v1/execute",
            headers=ops_account.headers,
            files={"wasm": ("hello.wat", wat.HELLO.encode())},
        )
        assert refused.status_code == 503
        assert refused.json()["code"] == "shutting_down"
        assert refused.headers["retry-after"] == "1"
        assert not long_run.done(), "the refusals must have happened during the run"

        finished = long_run.result(timeout=30)
        assert finished.status_code == 200
        assert finished.json()["status"] == "success"
        assert finished.json()["output"] == "done\n"
        # uvicorn re-raises the signal after its graceful shutdown, so -SIGTERM is normal.
        assert process.wait(timeout=30) in (0, -signal.SIGTERM)

    row = _usage_row(migrated_database_url, uuid.UUID(finished.json()["execution_id"]))
    assert row is not None
    assert row.status == "success"
    assert row.duration_ms >= 1900
