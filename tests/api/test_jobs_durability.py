"""Jobs against real server processes, on each database, on the SQLite queue and on Redis:
the API's contract; 100 jobs survive a SIGKILL mid-way and finish once each (job rows and
usage rows counted); two replicas share one queue."""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.api import wat
from tests.api.test_jobs import set_tier, submit, wait_for
from tests.fixtures.app import Account, ServerProcess, create_account
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import Job, UsageLog

# Server processes, kills and restarts, and up to 100 jobs: 10-20 s each on an idle machine,
# several times that on a loaded one.
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(300)]

REDIS_URL = os.environ.get("WASMWIZ_TEST_REDIS_URL")
JOBS = 100
# A few ms of guest code a run: long enough that a kill finds runs in flight.
BUSY = """(module (memory (export "memory") 1)
  (func (export "_start") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 2000000))))))"""


def queue_settings(kind: str, tmp_path: Path) -> dict[str, str]:
    settings = {
        "queue_name": f"test-{uuid.uuid4().hex}",
        "queue_workers": "2",
        "job_lease_seconds": "2",
        "job_sweep_seconds": "0.5",
        # A process killed between taking a message and claiming its job loses the message.
        "job_requeue_seconds": "3",
        "queue_path": str(tmp_path / "queue.db"),
    }
    if kind == "redis":
        if not REDIS_URL:
            pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
        settings["redis_url"] = REDIS_URL
    return settings


async def counts(database_url: str, account: Account) -> dict[str, Any]:
    database = Database(database_url)
    try:
        async with database.session() as session:
            states = dict(
                (
                    await session.execute(
                        select(Job.state, func.count())
                        .where(Job.user_id == account.user_id)
                        .group_by(Job.state)
                    )
                ).all()
            )
            usage = await session.scalar(
                select(func.count()).where(UsageLog.user_id == account.user_id)
            )
            recorded = await session.scalar(
                select(func.count(func.distinct(Job.execution_id))).where(
                    Job.user_id == account.user_id,
                    Job.execution_id.in_(select(UsageLog.id)),
                )
            )
            attempts = (
                await session.scalars(select(Job.attempts).where(Job.user_id == account.user_id))
            ).all()
    finally:
        await database.dispose()
    return {"states": states, "usage": usage, "recorded": recorded, "attempts": list(attempts)}


async def submit_all(url: str, account: Account, count: int) -> list[str]:
    files = {"wasm": ("busy.wat", BUSY.encode())}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        ids = []
        for _ in range(count):
            response = await client.post("/api/v1/jobs", headers=account.headers, files=files)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
    return ids


async def wait_until(
    database_url: str, account: Account, done: Callable[[dict[str, Any]], bool], seconds: float
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        seen = await counts(database_url, account)
        if done(seen):
            return seen
        assert time.monotonic() < deadline, seen
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("queue", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_jobs_accepted_before_a_kill_9_finish_once_each_after_a_restart(
    process_factory: Callable[..., ServerProcess],
    migrated_database_url: str,
    tmp_path: Path,
    queue: str,
) -> None:
    settings = queue_settings(queue, tmp_path)
    account = await create_account(migrated_database_url)
    # Accepted by a process that runs none of them, killed too: all 100 wait in the queue.
    taking = process_factory(**{**settings, "queue_workers": "0"})
    await submit_all(taking.url, account, JOBS)
    taking.process.send_signal(signal.SIGKILL)
    taking.process.wait()
    # Then killed mid-way through running them: runs in flight die with it.
    server = process_factory(**settings)
    seen = await wait_until(
        migrated_database_url, account, lambda c: c["states"].get("finished", 0) >= 10, 60
    )
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    at_kill = await counts(migrated_database_url, account)
    assert at_kill["states"].get("finished", 0) < JOBS, "all finished before the kill"

    process_factory(**settings)
    final = await wait_until(
        migrated_database_url,
        account,
        lambda c: c["states"].get("finished", 0) == JOBS,
        120,
    )
    print(f"at the kill: {at_kill['states']}; after: {final['states']}")
    assert final["states"] == {"finished": JOBS}
    # One usage row per job, each the one its job points at: none lost, none twice.
    assert final["usage"] == JOBS
    assert final["recorded"] == JOBS
    assert all(1 <= attempts <= 3 for attempts in final["attempts"])
    assert seen["states"].get("finished", 0) >= 10


@pytest.mark.parametrize("queue", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_two_replicas_share_one_queue(
    process_factory: Callable[..., ServerProcess],
    migrated_database_url: str,
    tmp_path: Path,
    queue: str,
) -> None:
    # Replicas on one host may share the SQLite queue's file; on several, Redis.
    settings = queue_settings(queue, tmp_path)
    # The first replica only takes jobs; the second works the queue they share.
    taking = process_factory(**{**settings, "queue_workers": "0"})
    process_factory(**settings)
    account = await create_account(migrated_database_url)
    ids = await submit_all(taking.url, account, 20)
    final = await wait_until(
        migrated_database_url, account, lambda c: c["states"].get("finished", 0) == 20, 60
    )
    async with httpx.AsyncClient(base_url=taking.url, timeout=30) as client:
        job = (await client.get(f"/api/v1/jobs/{ids[0]}", headers=account.headers)).json()
    assert final["usage"] == 20
    assert job["state"] == "finished"
    assert job["result"]["status"] == "success"


@pytest.mark.parametrize("queue", ["sqlite", pytest.param("redis", marks=pytest.mark.redis)])
async def test_server_processes_run_cancel_expire_and_cap_jobs(
    process_factory: Callable[..., ServerProcess],
    migrated_database_url: str,
    tmp_path: Path,
    queue: str,
) -> None:
    """The jobs API's contract against `wasmwiz serve` processes, on each database with each
    queue (`make run` is SQLite with its queue a file; replicas, PostgreSQL and Redis): a
    job's result is the synchronous run's; a queued job cancels; results expire; the queue
    cap and the tier's wall-clock limit hold."""
    await set_tier(
        migrated_database_url,
        "pro",
        job_timeout_seconds=2,
        max_queued_jobs=2,
        job_result_seconds=2,
    )
    account = await create_account(migrated_database_url)
    settings = queue_settings(queue, tmp_path)
    working = process_factory(**settings)
    async with httpx.AsyncClient(base_url=working.url, timeout=30) as client:
        job = (await submit(client, account, wat.ECHO, input="same")).json()
        looping = (await submit(client, account, wat.INFINITE_LOOP)).json()
        finished = await wait_for(client, account, job["id"])
        timed_out = await wait_for(client, account, looping["id"])
        synchronous = await client.post(
            "/api/v1/execute",
            headers=account.headers,
            files={"wasm": ("prog.wat", wat.ECHO.encode())},
            data={"input": "same"},
        )
        expired = await wait_for(client, account, job["id"], {"expired"})
    for name in ("status", "output", "stderr", "exit_code"):
        assert finished["result"][name] == synchronous.json()[name], name
    # EXECUTION_TIMEOUT is 1 s for these servers; the tier gives its jobs 2 s.
    assert timed_out["result"]["status"] == "timeout"
    assert timed_out["result"]["duration_ms"] >= 1900
    assert expired["result"] is None

    # A process that only takes jobs (on another queue): they wait, and can be cancelled.
    taking = process_factory(**{**queue_settings(queue, tmp_path), "queue_workers": "0"})
    async with httpx.AsyncClient(base_url=taking.url, timeout=30) as client:
        waiting = [await submit(client, account, wat.HELLO) for _ in range(3)]
        cancelled = await client.delete(
            f"/api/v1/jobs/{waiting[0].json()['id']}", headers=account.headers
        )
    assert [response.status_code for response in waiting] == [202, 202, 429]
    assert waiting[2].json()["code"] == "job_queue_full"
    assert cancelled.json()["state"] == "cancelled"
