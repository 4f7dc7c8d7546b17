"""`wasmwiz serve --workers N`: several processes only with limits they share."""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.api import wat
from tests.api.test_rate_limits import set_tier
from tests.fixtures.app import ServerProcess, create_account
from wasmwiz.cli.main import main
from wasmwiz.config import ConfigurationError, load_settings
from wasmwiz.sandbox.workers import MAX_CAPACITY, WorkerPool

# Shared limits counted exactly, nothing timed: with the parallel pass, under coverage.
pytestmark = pytest.mark.parallel

REDIS_URL = os.environ.get("WASMWIZ_TEST_REDIS_URL")


def test_several_workers_with_per_process_limits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="RATE_LIMIT_BACKEND=redis"):
        load_settings(var_dir=tmp_path, workers=2)
    assert load_settings(var_dir=tmp_path, workers=1).workers == 1


def test_the_sandbox_queue_is_bounded_by_what_its_wake_pipe_holds(tmp_path: Path) -> None:
    # One byte per job in a pipe that may hold only one page: beyond it, submitting a
    # run would block the event loop. The largest settings fill that page exactly.
    largest = load_settings(
        var_dir=tmp_path, max_concurrent_executions=256, max_queued_executions=3840
    )
    assert largest.max_concurrent_executions + largest.max_queued_executions == MAX_CAPACITY
    with pytest.raises(
        ConfigurationError,
        match="MAX_QUEUED_EXECUTIONS: Input should be less than or equal to 3840",
    ):
        load_settings(var_dir=tmp_path, max_queued_executions=3841)
    with pytest.raises(
        ConfigurationError,
        match="MAX_CONCURRENT_EXECUTIONS: Input should be less than or equal to 256",
    ):
        load_settings(var_dir=tmp_path, max_concurrent_executions=257)
    with pytest.raises(ValueError, match="at most 4096"):
        WorkerPool(max_workers=1, max_queue=MAX_CAPACITY)


def test_serve_with_workers_and_the_memory_limiter_exits_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    monkeypatch.delenv("RATE_LIMIT_BACKEND", raising=False)
    # A migrated database: serve refuses a missing schema before it looks at its flags.
    assert main(["db", "upgrade"]) == 0
    assert main(["serve", "--workers", "2", "--port", "1"]) == 2
    assert "RATE_LIMIT_BACKEND=redis" in capsys.readouterr().err


@pytest.mark.redis
@pytest.mark.anyio
async def test_two_workers_of_one_server_share_one_exact_limit(
    process_factory: Callable[..., ServerProcess], migrated_database_url: str
) -> None:
    if not REDIS_URL:
        pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
    server = process_factory(workers="2", rate_limit_backend="redis", redis_url=REDIS_URL)
    # Free is 10 a minute; its concurrency cap of 2 is lifted so only the rate decides.
    await set_tier(migrated_database_url, "free", max_concurrent_executions=50)
    account = await create_account(migrated_database_url, tier="free")
    files = {"wasm": ("hello.wat", wat.HELLO.encode())}

    async def post() -> int:
        # A connection each, so the kernel spreads them over both worker processes.
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            response = await client.post("/api/v1/execute", headers=account.headers, files=files)
            return response.status_code

    statuses = await asyncio.gather(*(post() for _ in range(30)))
    assert Counter(statuses) == {200: 10, 429: 20}
