"""Jobs over real HTTP (POST/GET/DELETE /api/v1/jobs) on each database, with and without
Redis: the result a synchronous run gives, cancel, expiry, the queue cap, the tier's time
limit, failures by code, the list's filter and pages."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.wat import ECHO, HELLO, INFINITE_LOOP, UNKNOWN_IMPORT
from tests.fixtures.app import Account, ServerFactory, create_account
from tests.ops.metrics_text import sample
from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import tiers
from wasmwiz.services.job_queue import build_huey

pytestmark = pytest.mark.anyio

FINAL = {"finished", "failed", "cancelled", "expired"}


async def submit(
    client: httpx.AsyncClient, account: Account, wat: str, **data: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/jobs",
        headers=account.headers,
        files={"wasm": ("prog.wat", wat.encode())},
        data=data,
    )


async def wait_for(
    client: httpx.AsyncClient,
    account: Account,
    job_id: str,
    states: set[str] = FINAL,
    seconds: float = 30.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        response = await client.get(f"/api/v1/jobs/{job_id}", headers=account.headers)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if job["state"] in states:
            return job
        assert time.monotonic() < deadline, job
        await asyncio.sleep(0.05)


async def set_tier(database_url: str, name: str, **limits: object) -> None:
    database = Database(database_url)
    try:
        async with database.writer() as session:
            assert await tiers.update(session, name, **limits)
            await session.commit()
    finally:
        await database.dispose()


async def test_a_job_finishes_with_the_result_a_synchronous_run_gives(
    server_factory: ServerFactory, account: Account, backend: dict[str, Any]
) -> None:
    server = server_factory(**backend)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await submit(client, account, ECHO, input="over the queue")
        assert response.status_code == 202, response.text
        job = response.json()
        assert job["state"] == "queued"
        assert response.headers["location"] == f"/api/v1/jobs/{job['id']}"
        assert "x-ratelimit-remaining" in response.headers
        finished = await wait_for(client, account, job["id"])
        synchronous = await client.post(
            "/api/v1/execute",
            headers=account.headers,
            files={"wasm": ("prog.wat", ECHO.encode())},
            data={"input": "over the queue"},
        )
        metrics = (await client.get("/metrics")).text
    assert finished["state"] == "finished", finished
    assert sample(metrics, "wasmwiz_jobs_total", event="submitted") == 1
    assert sample(metrics, "wasmwiz_jobs_total", event="finished") == 1
    assert finished["attempts"] == 1
    assert finished["error"] is None
    result, expected = finished["result"], synchronous.json()
    for name in ("status", "output", "stderr", "exit_code", "error", "files"):
        assert result[name] == expected[name], name
    assert result["output"] == "over the queue"
    assert finished["expires_at"] is not None


async def test_a_job_takes_input_files_and_returns_the_files_it_collects(
    client: httpx.AsyncClient, account: Account
) -> None:
    copy = (Path(__file__).parents[1] / "sandbox" / "fixtures" / "files" / "copy.wasm").read_bytes()
    payload = bytes(range(256)) * 64
    response = await client.post(
        "/api/v1/jobs",
        headers=account.headers,
        files=[("wasm", ("copy.wasm", copy)), ("files", ("in.txt", payload))],
        data={"collect": '["out/*"]'},
    )
    assert response.status_code == 202, response.text
    finished = await wait_for(client, account, response.json()["id"])
    result = finished["result"]
    assert result["status"] == "success", result
    (item,) = result["files"]
    assert item["path"] == "out/in.txt"
    assert base64.b64decode(item["content"]) == payload


async def test_a_queued_job_is_cancelled_and_never_runs(
    server_factory: ServerFactory, account: Account
) -> None:
    server = server_factory(queue_workers=0)  # this process only enqueues
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        job = (await submit(client, account, HELLO)).json()
        cancelled = await client.delete(f"/api/v1/jobs/{job['id']}", headers=account.headers)
        again = await client.delete(f"/api/v1/jobs/{job['id']}", headers=account.headers)
        shown = await wait_for(client, account, job["id"])
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert again.status_code == 409
    assert again.json()["code"] == "job_not_cancellable"
    assert shown["state"] == "cancelled"
    assert shown["result"] is None


async def test_a_job_whose_message_was_lost_is_enqueued_again(
    server_factory: ServerFactory, account: Account
) -> None:
    # A process that only takes jobs; the message of the one it takes is then lost (a
    # process killed after taking it, Redis restarted), as the queue is emptied here.
    taking = server_factory(queue_workers=0)
    async with httpx.AsyncClient(base_url=taking.url, timeout=30) as client:
        job = (await submit(client, account, HELLO)).json()
    queue = build_huey(
        name=taking.settings.queue_name,
        redis_url=None,
        sqlite_path=taking.settings.effective_queue_path,
    )
    assert queue.pending_count() == 1
    queue.flush()
    queue.storage.close()
    # A process that works the same queue finds no message; its sweep enqueues one again.
    working = server_factory(
        queue_name=taking.settings.queue_name,
        queue_path=taking.settings.effective_queue_path,
        job_requeue_seconds=1,
        job_sweep_seconds=0.2,
    )
    async with httpx.AsyncClient(base_url=working.url, timeout=30) as client:
        finished = await wait_for(client, account, job["id"], seconds=15)
    assert finished["state"] == "finished"
    assert finished["result"]["output"] == "Hello, WasmWiz!\n"


async def test_a_job_the_queue_refused_is_accepted_and_runs_later(
    server_factory: ServerFactory, account: Account
) -> None:
    # The SQLite queue's file locked by another process for longer than the queue waits
    # (5 s): the job's message cannot be written. The job is kept, so it is accepted; the
    # sweep sends its message once the queue takes writes again.
    server = server_factory(job_requeue_seconds=1, job_sweep_seconds=0.2)
    locker = sqlite3.connect(server.settings.effective_queue_path, isolation_level=None)
    try:
        locker.execute("BEGIN EXCLUSIVE")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            submitted = await submit(client, account, HELLO)
            assert submitted.status_code == 202, submitted.text
            kept = await client.get(
                f"/api/v1/jobs/{submitted.json()['id']}", headers=account.headers
            )
            metrics = (await client.get("/metrics")).text
            locker.execute("ROLLBACK")
            finished = await wait_for(client, account, submitted.json()["id"], seconds=20)
    finally:
        locker.close()
    assert kept.json()["state"] == "queued"
    assert sample(metrics, "wasmwiz_jobs_total", event="enqueue_failed") == 1
    assert finished["state"] == "finished"
    assert finished["result"]["output"] == "Hello, WasmWiz!\n"


async def test_another_accounts_job_is_not_found(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    # Made first: an account written while a job is kept can meet SQLite's lock.
    stranger = await create_account(migrated_database_url)
    job = (await submit(client, account, HELLO)).json()
    for method in ("GET", "DELETE"):
        response = await client.request(
            method, f"/api/v1/jobs/{job['id']}", headers=stranger.headers
        )
        assert response.status_code == 404
        assert response.json()["code"] == "job_not_found"
    listed = await client.get("/api/v1/jobs", headers=stranger.headers)
    assert listed.json()["items"] == []
    unknown = await client.get(f"/api/v1/jobs/{uuid.uuid4()}", headers=account.headers)
    assert unknown.json()["code"] == "job_not_found"


async def test_the_queue_cap_refuses_one_job_too_many(
    server_factory: ServerFactory, account: Account, migrated_database_url: str
) -> None:
    await set_tier(migrated_database_url, "pro", max_queued_jobs=3)
    server = server_factory(queue_workers=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        accepted = [await submit(client, account, HELLO) for _ in range(3)]
        refused = await submit(client, account, HELLO)
        # A cancelled job no longer waits: room for one more.
        await client.delete(f"/api/v1/jobs/{accepted[0].json()['id']}", headers=account.headers)
        after_cancel = await submit(client, account, HELLO)
    assert [response.status_code for response in accepted] == [202, 202, 202]
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "job_queue_full"
    assert after_cancel.status_code == 202


async def test_what_waiting_jobs_hold_is_bounded_by_the_storage_quota(
    server_factory: ServerFactory, account: Account, migrated_database_url: str
) -> None:
    await set_tier(migrated_database_url, "pro", max_stored_module_bytes=100_000)
    server = server_factory(queue_workers=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        first = await submit(client, account, HELLO, input="x" * 60_000)
        second = await submit(client, account, HELLO, input="x" * 60_000)
        small = await submit(client, account, HELLO, input="x" * 1_000)
    assert first.status_code == 202
    assert second.status_code == 429
    assert second.json()["code"] == "job_queue_full"
    assert "bytes" in second.json()["detail"]
    assert small.status_code == 202


async def test_a_job_runs_within_its_tiers_limit_not_the_synchronous_one(
    server_factory: ServerFactory, account: Account, migrated_database_url: str
) -> None:
    # The test servers' synchronous limit is 1 s; the tier gives its jobs 2 s.
    await set_tier(migrated_database_url, "pro", job_timeout_seconds=2)
    server = server_factory()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        job = (await submit(client, account, INFINITE_LOOP)).json()
        finished = await wait_for(client, account, job["id"])
    assert job["timeout_seconds"] == 2.0
    assert finished["state"] == "finished"
    assert finished["result"]["status"] == "timeout"
    assert 1900 <= finished["result"]["duration_ms"] < 5000


async def test_a_module_the_sandbox_refuses_fails_the_job_with_its_code(
    client: httpx.AsyncClient, account: Account
) -> None:
    job = (await submit(client, account, UNKNOWN_IMPORT)).json()
    failed = await wait_for(client, account, job["id"])
    assert failed["state"] == "failed"
    assert failed["result"] is None
    assert failed["error"]["code"] == "unsupported_import"


async def test_a_result_expires_after_the_tiers_keeping_time(
    server_factory: ServerFactory, account: Account, migrated_database_url: str
) -> None:
    await set_tier(migrated_database_url, "pro", job_result_seconds=1)
    server = server_factory(job_sweep_seconds=0.2)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        job = (await submit(client, account, HELLO)).json()
        finished = await wait_for(client, account, job["id"])
        expired = await wait_for(client, account, job["id"], {"expired"})
    assert finished["state"] == "finished"
    assert finished["result"] is not None
    assert expired["result"] is None
    assert expired["finished_at"] == finished["finished_at"]


async def test_jobs_are_listed_newest_first_by_state_a_page_at_a_time(
    server_factory: ServerFactory, account: Account
) -> None:
    server = server_factory(queue_workers=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        ids = [(await submit(client, account, HELLO)).json()["id"] for _ in range(5)]
        await client.delete(f"/api/v1/jobs/{ids[0]}", headers=account.headers)
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = (await client.get("/api/v1/jobs", headers=account.headers, params=params)).json()
            seen += [job["id"] for job in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        queued = await client.get(
            "/api/v1/jobs", headers=account.headers, params={"state": "queued"}
        )
        bad = await client.get("/api/v1/jobs", headers=account.headers, params={"cursor": "x"})
    assert seen == list(reversed(ids))
    assert [job["id"] for job in queued.json()["items"]] == list(reversed(ids[1:]))
    assert bad.status_code == 422


async def test_a_bad_callback_url_is_refused_before_anything_is_kept(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await submit(client, account, HELLO, callback_url="ftp://example.com/hook")
    listed = await client.get("/api/v1/jobs", headers=account.headers)
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_callback_url"
    assert listed.json()["items"] == []


async def test_an_unknown_stored_module_is_refused_when_submitted(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.post(
        "/api/v1/jobs",
        headers=account.headers,
        files={"module": (None, b"sha256:" + b"0" * 64)},
    )
    listed = await client.get("/api/v1/jobs", headers=account.headers)
    assert response.status_code == 404
    assert response.json()["code"] == "module_not_found"
    assert listed.json()["items"] == []


async def test_a_bad_form_is_refused_with_the_execute_forms_codes(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.post(
        "/api/v1/jobs", headers=account.headers, files={"input": ("stdin", b"no module")}
    )
    unknown = await client.post(
        "/api/v1/jobs",
        headers=account.headers,
        files={"wasm": ("prog.wat", HELLO.encode())},
        data={"colour": "red"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "missing_wasm"
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_field"
