"""The result cache over HTTP, on each backend (in process; Redis): a repeated deterministic
request is answered without a sandbox run, and everything else runs."""

from __future__ import annotations

import asyncio
import base64
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api.test_rate_limits import set_tier
from tests.fixtures.app import Account, LiveServer, ServerFactory, create_account
from tests.ops.metrics_text import sample
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import UsageLog

pytestmark = pytest.mark.anyio

# Prints 8 bytes of random_get, then what it read of stdin: its output changes with the
# seed (random_get's stream) and with every byte of stdin.
RANDOM_THEN_STDIN = """(module
  (import "wasi_snapshot_preview1" "random_get" (func $random (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $random (i32.const 256) (i32.const 8)))
    (i32.store (i32.const 0) (i32.const 264))
    (i32.store (i32.const 4) (i32.const 1024))
    (drop (call $fd_read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
    (i32.store (i32.const 16) (i32.const 256))
    (i32.store (i32.const 20) (i32.add (i32.const 8) (i32.load (i32.const 8))))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))))"""
STDIN = b"the same input\n"
DETERMINISTIC = {"deterministic": "true", "seed": "7"}


@pytest.fixture
def cache_server(server_factory: ServerFactory, backend: dict[str, Any]) -> LiveServer:
    # A minute, not the default hour: entries this suite leaves in the test Redis go soon.
    return server_factory(result_cache_seconds=60, **backend)


@pytest.fixture
async def client(cache_server: LiveServer) -> Any:
    async with httpx.AsyncClient(base_url=cache_server.url, timeout=30) as http:
        yield http


async def run(
    client: httpx.AsyncClient,
    account: Account,
    *,
    stdin: bytes = STDIN,
    data: dict[str, str] | None = None,
    module: str = RANDOM_THEN_STDIN,
) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files={"wasm": ("random.wat", module.encode()), "input": ("in", stdin)},
        data=DETERMINISTIC if data is None else data,
        params={"encoding": "base64"},
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    body["headers"] = response.headers
    return body


async def sandbox_runs(client: httpx.AsyncClient) -> float:
    """Runs the sandbox made, by the runs metric (every outcome, every tier)."""
    text = (await client.get("/metrics")).text
    return sum(
        sample(text, "wasmwiz_executions_total", outcome=outcome, tier=tier)
        for outcome in ("success", "exit_nonzero", "trap", "timeout")
        for tier in ("free", "basic", "pro")
    )


async def lookups(client: httpx.AsyncClient, result: str) -> float:
    text = (await client.get("/metrics")).text
    return sample(text, "wasmwiz_result_cache_lookups_total", result=result)


def same_result(first: dict[str, Any], second: dict[str, Any]) -> bool:
    ignored = {"execution_id", "cached", "headers"}
    return {k: v for k, v in first.items() if k not in ignored} == {
        k: v for k, v in second.items() if k not in ignored
    }


async def test_a_repeat_is_answered_from_the_cache_without_a_run(
    client: httpx.AsyncClient, account: Account
) -> None:
    first = await run(client, account)
    assert first["cached"] is False
    assert base64.b64decode(first["output"])[8:] == STDIN
    runs = await sandbox_runs(client)
    assert runs == 1

    second = await run(client, account)

    assert second["cached"] is True
    assert same_result(first, second)  # the output, status, duration and fuel: the run's
    assert second["execution_id"] != first["execution_id"]  # an execution of its own
    assert await sandbox_runs(client) == runs  # no sandbox run
    assert (await lookups(client, "hit"), await lookups(client, "miss")) == (1, 1)


async def test_anything_that_changes_the_inputs_runs(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    # Made before the server writes usage rows: SQLite takes one writer at a time.
    other = await create_account(migrated_database_url)
    kept = await run(client, account)
    expected_runs = 1

    async def ran(body: dict[str, Any]) -> bool:
        nonlocal expected_runs
        expected_runs += 1
        return body["cached"] is False and await sandbox_runs(client) == expected_runs

    # One byte of stdin: a miss (and its own entry).
    changed = STDIN[:-2] + b"?\n"
    assert await ran(await run(client, account, stdin=changed))
    # Another seed: a miss, and other random bytes.
    other_seed = await run(client, account, data={"deterministic": "true", "seed": "8"})
    assert await ran(other_seed)
    assert base64.b64decode(other_seed["output"])[:8] != base64.b64decode(kept["output"])[:8]
    # Args and env are inputs too.
    assert await ran(await run(client, account, data={**DETERMINISTIC, "args": '["-x"]'}))
    assert await ran(await run(client, account, data={**DETERMINISTIC, "env": '{"A": "b"}'}))
    # A fuel budget is a limit the result depends on.
    assert await ran(await run(client, account, data={**DETERMINISTIC, "max_fuel": "100000"}))
    # Another account sending the very same request: its own run (per-account entries).
    assert await ran(await run(client, other))
    # And the first request is still cached.
    assert (await run(client, account))["cached"] is True
    assert await sandbox_runs(client) == expected_runs


async def test_runs_not_deterministic_or_without_a_seed_are_never_cached(
    client: httpx.AsyncClient, account: Account
) -> None:
    for data in (
        {},  # neither
        {"seed": "7"},  # a seed, but not deterministic
        {"deterministic": "true"},  # deterministic, but no seed: only a sent seed counts
        {"deterministic": "true", "seed": ""},  # an empty field is no seed either
    ):
        for _ in range(2):
            assert (await run(client, account, data=data))["cached"] is False
    assert await sandbox_runs(client) == 8
    assert await lookups(client, "hit") == 0
    assert await lookups(client, "miss") == 0  # never even looked up


async def test_cache_false_runs_and_neither_reads_nor_fills_the_cache(
    client: httpx.AsyncClient, account: Account
) -> None:
    opted_out = {**DETERMINISTIC, "cache": "false"}
    # Nothing kept by an opted-out run: the next cacheable one is a miss.
    assert (await run(client, account, data=opted_out))["cached"] is False
    assert (await run(client, account))["cached"] is False
    assert (await run(client, account))["cached"] is True
    # A result is cached now; cache=false runs all the same, and does not look.
    hits = await lookups(client, "hit")
    assert (await run(client, account, data=opted_out))["cached"] is False
    assert await sandbox_runs(client) == 3
    assert await lookups(client, "hit") == hits
    refused = await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files={"wasm": ("random.wat", RANDOM_THEN_STDIN.encode())},
        data={**DETERMINISTIC, "cache": "perhaps"},
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_cache"


async def usage_rows(database_url: str, account: Account) -> list[UsageLog]:
    database = Database(database_url)
    try:
        async with database.session() as session:
            rows = await session.scalars(
                select(UsageLog)
                .where(UsageLog.user_id == account.user_id)
                .order_by(UsageLog.created_at)
            )
            return list(rows)
    finally:
        await database.dispose()


async def until_rows(database_url: str, account: Account, count: int) -> list[UsageLog]:
    for _ in range(100):  # the test server writes usage every 50 ms
        rows = await usage_rows(database_url, account)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.05)
    raise AssertionError(f"{count} usage rows never written")


async def test_a_cached_answer_is_counted_and_recorded_as_cached(
    client: httpx.AsyncClient, migrated_database_url: str
) -> None:
    await set_tier(migrated_database_url, "free", requests_per_minute=3)
    account = await create_account(migrated_database_url, tier="free")

    first = await run(client, account)
    second = await run(client, account)
    third = await run(client, account)

    assert [first["cached"], second["cached"], third["cached"]] == [False, True, True]
    # Each spent one of the minute's three, cached or not: the next is refused.
    remaining = [int(body["headers"]["X-RateLimit-Remaining"]) for body in (first, second, third)]
    assert remaining == [2, 1, 0]
    daily = [int(body["headers"]["X-RateLimit-Daily-Remaining"]) for body in (first, second)]
    assert daily[0] - daily[1] == 1
    refused = await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files={"wasm": ("random.wat", RANDOM_THEN_STDIN.encode()), "input": ("in", STDIN)},
        data=DETERMINISTIC,
    )
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"

    rows = await until_rows(migrated_database_url, account, 3)
    by_id = {row.id: row for row in rows}
    assert [by_id[uuid.UUID(body["execution_id"])].cached for body in (first, second, third)] == [
        False,
        True,
        True,
    ]
    # A cached row repeats the figures of the run it was answered from.
    ran, cached = by_id[uuid.UUID(first["execution_id"])], by_id[uuid.UUID(second["execution_id"])]
    figures = ("status", "module_sha256", "output_size", "fuel_consumed", "duration_ms")
    assert [getattr(cached, name) for name in figures] == [getattr(ran, name) for name in figures]
    usage = (await client.get("/api/v1/usage", headers=account.headers)).json()
    assert sorted(run["cached"] for run in usage["recent"]) == [False, True, True]
    assert usage["today"] == 3
