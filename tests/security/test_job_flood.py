"""A free account fills its job queue with guests that loop until their wall clock: its jobs
run at most as many at once as its tier lets it run synchronously, and another account's
runs stay fast meanwhile.

The server is its own process (`wasmwiz serve`) with four execution slots and four queue
workers: before jobs held slots of their account, one account's looping jobs took all four,
and every other account's run waited for one to end. The flooder's own submissions are not
refused for its running jobs: job slots are apart from its synchronous runs'.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_jobs import set_tier
from tests.fixtures.app import Account, ServerProcess, create_account
from tests.security import guests
from tests.security.checks import HELLO

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(180)]

FREE_CONCURRENCY = 2
JOB_SECONDS = 2
JOBS = 10  # the free tier's whole minute, and its whole queue


async def hello_latencies(
    client: httpx.AsyncClient, account: Account, seconds: float
) -> list[float]:
    files = {"wasm": ("hello.wasm", HELLO)}
    latencies: list[float] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        response = await client.post("/api/v1/execute", headers=account.headers, files=files)
        latencies.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "success"
    return latencies


async def running(client: httpx.AsyncClient, account: Account, ids: list[str], count: int) -> None:
    deadline = time.monotonic() + 30
    while True:
        states = [
            (await client.get(f"/api/v1/jobs/{job_id}", headers=account.headers)).json()["state"]
            for job_id in ids
        ]
        if states.count("running") >= count:
            return
        assert time.monotonic() < deadline, states
        await asyncio.sleep(0.05)


def most_at_once(jobs: list[dict[str, Any]]) -> int:
    """The most runs that overlapped: each run from its end back by its duration, trimmed by
    0.1 s at both ends (a slot is taken just after a run is claimed, given back just before
    it is recorded)."""
    spans = []
    for job in jobs:
        end = datetime.fromisoformat(job["finished_at"])
        start = end - timedelta(milliseconds=job["result"]["duration_ms"])
        spans.append((start + timedelta(seconds=0.1), end - timedelta(seconds=0.1)))
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


async def test_one_accounts_looping_jobs_hold_only_its_own_slots(
    process_factory: Callable[..., ServerProcess], migrated_database_url: str, tmp_path: Path
) -> None:
    await set_tier(
        migrated_database_url,
        "free",
        job_timeout_seconds=JOB_SECONDS,
        max_concurrent_executions=FREE_CONCURRENCY,
    )
    # The other account may run as often as the test asks: only latency is measured.
    await set_tier(migrated_database_url, "pro", requests_per_minute=100_000)
    flooder = await create_account(migrated_database_url, tier="free")
    other = await create_account(migrated_database_url)
    server = process_factory(
        queue_name=f"flood-{tmp_path.name}",
        queue_path=str(tmp_path / "queue.db"),
        queue_workers="4",
        max_concurrent_executions="4",
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        baseline = await hello_latencies(client, other, 1.5)
        loop = {"wasm": ("loop.wat", guests.INFINITE_LOOP.encode())}
        ids = []
        for submitted in range(JOBS):
            response = await client.post("/api/v1/jobs", headers=flooder.headers, files=loop)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
            if submitted == FREE_CONCURRENCY:  # the rest go in while its jobs run
                await running(client, flooder, ids, FREE_CONCURRENCY)
        refused = await client.post("/api/v1/jobs", headers=flooder.headers, files=loop)
        during = await hello_latencies(client, other, 3 * JOB_SECONDS)

        jobs: list[dict[str, Any]] = []
        deadline = time.monotonic() + 90
        for job_id in ids:
            while True:
                job = (await client.get(f"/api/v1/jobs/{job_id}", headers=flooder.headers)).json()
                if job["state"] not in ("queued", "running"):
                    break
                assert time.monotonic() < deadline, job
                await asyncio.sleep(0.2)
            jobs.append(job)

    at_once = most_at_once(jobs)
    print(
        f"hello p50 alone {statistics.median(baseline) * 1000:.1f} ms, during the flood"
        f" {statistics.median(during) * 1000:.1f} ms (max {max(during) * 1000:.0f} ms,"
        f" {len(during)} runs); the flooder's runs at once: {at_once}"
    )
    assert refused.status_code == 429
    assert [job["result"]["status"] for job in jobs] == ["timeout"] * JOBS
    assert at_once <= FREE_CONCURRENCY
    # Two slots stay free for everyone else: no run of theirs waits for a looping job to end.
    assert max(during) < JOB_SECONDS / 2
