"""Tier limits over HTTP: headers, refusals, honest Retry-After, concurrency, back-pressure."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from tests.api import wat
from tests.api.conftest import REDIS_URL, START
from tests.fixtures.app import (
    WORKERS_AT_START,
    Account,
    LiveServer,
    ServerFactory,
    create_account,
)
from tests.fixtures.tcp_proxy import TcpProxy
from tests.ops.metrics_text import sample
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import SubscriptionTier, UsageLog
from wasmwiz.ratelimit import ManualClock

pytestmark = pytest.mark.anyio


@pytest.fixture
def limited_server(
    server_factory: ServerFactory, backend: dict[str, Any], clock: ManualClock
) -> LiveServer:
    return server_factory(app_options={"clock": clock}, **backend)


async def run_hello(client: httpx.AsyncClient, account: Account) -> httpx.Response:
    return await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files={"wasm": ("hello.wat", wat.HELLO.encode())},
    )


async def wait_until_running(client: httpx.AsyncClient, count: int) -> None:
    """Until the server runs `count` executions (its in-flight gauge), not a fixed sleep."""
    deadline = time.monotonic() + 10
    while sample((await client.get("/metrics")).text, "wasmwiz_executions_in_flight") < count:
        assert time.monotonic() < deadline, f"{count} runs never in flight at once"
        await asyncio.sleep(0.05)


async def count_usage(database_url: str, account: Account) -> int:
    database = Database(database_url)
    try:
        async with database.session() as session:
            count = await session.scalar(
                select(func.count())
                .select_from(UsageLog)
                .where(UsageLog.user_id == account.user_id)
            )
    finally:
        await database.dispose()
    return count or 0


async def set_tier(database_url: str, name: str, **values: int) -> None:
    database = Database(database_url)
    try:
        async with database.session() as session:
            await session.execute(
                update(SubscriptionTier).where(SubscriptionTier.name == name).values(**values)
            )
            await session.commit()
    finally:
        await database.dispose()


@pytest.mark.parametrize(("tier", "per_minute"), [("free", 10), ("basic", 100), ("pro", 500)])
async def test_exactly_the_tier_limit_is_allowed_then_refused_honestly(
    limited_server: LiveServer,
    migrated_database_url: str,
    clock: ManualClock,
    tier: str,
    per_minute: int,
) -> None:
    account = await create_account(migrated_database_url, tier=tier)
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=30) as client:
        for spent in range(1, per_minute + 1):
            response = await run_hello(client, account)
            assert response.status_code == 200, response.text
            assert response.headers["X-RateLimit-Limit"] == str(per_minute)
            assert response.headers["X-RateLimit-Remaining"] == str(per_minute - spent)
        assert response.headers["X-RateLimit-Reset"] == str(-(-60 // per_minute))
        daily = int(response.headers["X-RateLimit-Daily-Limit"])
        assert response.headers["X-RateLimit-Daily-Remaining"] == str(daily - per_minute)

        refused = await run_hello(client, account)
        assert refused.status_code == 429
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "rate_limited"
        retry_after = int(refused.headers["Retry-After"])
        assert retry_after >= 1
        assert refused.headers["X-RateLimit-Remaining"] == "0"
        assert refused.headers["X-RateLimit-Daily-Remaining"] == str(daily - per_minute)

        clock.advance(retry_after - 1)
        assert (await run_hello(client, account)).status_code == 429
        clock.advance(1)
        assert (await run_hello(client, account)).status_code == 200

    await asyncio.sleep(0.3)  # the test server flushes usage every 50 ms
    # Refused requests ran nothing and recorded nothing.
    assert await count_usage(migrated_database_url, account) == per_minute + 1


async def test_daily_quota_refuses_until_midnight_utc(
    limited_server: LiveServer, migrated_database_url: str, clock: ManualClock
) -> None:
    await set_tier(migrated_database_url, "free", requests_per_day=3)
    account = await create_account(migrated_database_url, tier="free")
    midnight = (START // 86400 + 1) * 86400
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=30) as client:
        for _ in range(3):
            assert (await run_hello(client, account)).status_code == 200
        refused = await run_hello(client, account)
        assert refused.status_code == 429
        assert refused.json()["code"] == "daily_quota_exceeded"
        retry_after = int(refused.headers["Retry-After"])
        assert retry_after == int(midnight - START)
        assert refused.headers["X-RateLimit-Daily-Reset"] == str(retry_after)
        clock.set(midnight - 1)
        assert (await run_hello(client, account)).status_code == 429
        clock.set(midnight)
        response = await run_hello(client, account)
        assert response.status_code == 200
        assert response.headers["X-RateLimit-Daily-Remaining"] == "2"


async def test_a_changed_tier_row_applies_without_restart(
    server_factory: ServerFactory,
    backend: dict[str, Any],
    clock: ManualClock,
    migrated_database_url: str,
) -> None:
    # A row edited in the database reaches a warm key when its API-key cache entry lapses
    # (API_KEY_CACHE_SECONDS); with the cache off, on the very next request.
    server = server_factory(app_options={"clock": clock}, api_key_cache_seconds=0, **backend)
    account = await create_account(migrated_database_url, tier="free")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await run_hello(client, account)).headers["X-RateLimit-Limit"] == "10"
        await set_tier(migrated_database_url, "free", requests_per_minute=2)
        # The bucket is clamped to the new capacity of 2, then spends one.
        response = await run_hello(client, account)
        assert response.headers["X-RateLimit-Limit"] == "2"
        assert response.headers["X-RateLimit-Remaining"] == "1"
        assert (await run_hello(client, account)).status_code == 200
        assert (await run_hello(client, account)).status_code == 429


async def test_accounts_are_limited_independently(
    limited_server: LiveServer, migrated_database_url: str
) -> None:
    first = await create_account(migrated_database_url, tier="free")
    second = await create_account(migrated_database_url, tier="free")
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=30) as client:
        for _ in range(10):
            await run_hello(client, first)
        assert (await run_hello(client, first)).status_code == 429
        assert (await run_hello(client, second)).status_code == 200


async def test_health_and_auth_routes_are_not_rate_limited(
    server_factory: ServerFactory,
    backend: dict[str, Any],
    clock: ManualClock,
    migrated_database_url: str,
) -> None:
    server = server_factory(app_options={"clock": clock}, **backend, **WORKERS_AT_START)
    account = await create_account(migrated_database_url, tier="free")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for _ in range(12):
            assert (await client.get("/health")).status_code == 200
        for _ in range(10):
            await run_hello(client, account)
        assert (await run_hello(client, account)).status_code == 429
        assert (await client.get("/health")).status_code == 200


async def test_a_key_at_its_concurrency_cap_is_refused_while_others_are_served(
    server_factory: ServerFactory, backend: dict[str, Any], migrated_database_url: str
) -> None:
    server = server_factory(execution_timeout=2.0, max_concurrent_executions=4, **backend)
    busy = await create_account(migrated_database_url, tier="free")  # 2 in flight at most
    other = await create_account(migrated_database_url, tier="free")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        slow = [
            asyncio.create_task(
                client.post(
                    "/api/v1/execute",
                    headers=busy.headers,
                    files={"wasm": ("loop.wat", wat.INFINITE_LOOP.encode())},
                )
            )
            for _ in range(2)
        ]
        await wait_until_running(client, 2)
        refused = await run_hello(client, busy)
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_concurrent"
        assert refused.headers["Retry-After"] == "1"
        assert (await run_hello(client, other)).status_code == 200
        assert [r.json()["status"] for r in await asyncio.gather(*slow)] == ["timeout"] * 2
        # The slots are free again once the slow runs are done.
        assert (await run_hello(client, busy)).status_code == 200


async def test_a_full_process_answers_server_busy_at_once(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory(
        execution_timeout=2.0, max_concurrent_executions=1, max_queued_executions=0
    )
    first = await create_account(migrated_database_url)
    second = await create_account(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        slow = asyncio.create_task(
            client.post(
                "/api/v1/execute",
                headers=first.headers,
                files={"wasm": ("loop.wat", wat.INFINITE_LOOP.encode())},
            )
        )
        await wait_until_running(client, 1)
        refused = await run_hello(client, second)
        assert refused.status_code == 503
        assert refused.json()["code"] == "server_busy"
        assert int(refused.headers["Retry-After"]) >= 1
        assert (await slow).json()["status"] == "timeout"
        assert (await run_hello(client, second)).status_code == 200


@pytest.fixture
def redis_proxy() -> Iterator[TcpProxy]:
    if not REDIS_URL:
        pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
    address = httpx.URL(REDIS_URL)
    proxy = TcpProxy((address.host, address.port or 6379))
    yield proxy
    proxy.close()


@pytest.mark.redis
@pytest.mark.parametrize("fail_mode", ["closed", "open"])
async def test_redis_outage_follows_the_fail_mode_and_recovers(
    server_factory: ServerFactory,
    migrated_database_url: str,
    redis_proxy: TcpProxy,
    fail_mode: str,
) -> None:
    # Health reuses a run of its checks for HEALTH_CACHE_SECONDS; this test reads it
    # right before and after the outage, so every call checks afresh.
    server = server_factory(
        rate_limit_backend="redis",
        redis_url=redis_proxy.url,
        rate_limit_fail_mode=fail_mode,
        health_cache_seconds=0,
    )
    account = await create_account(migrated_database_url, tier="free")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await run_hello(client, account)).status_code == 200
        redis_proxy.cut()
        during = await run_hello(client, account)
        health = await client.get("/health")
        assert health.status_code == 503
        failing = [check["name"] for check in health.json()["checks"] if not check["ok"]]
        assert failing == ["rate_limiter"]
        if fail_mode == "closed":
            assert during.status_code == 503
            assert during.json()["code"] == "rate_limiter_unavailable"
            assert during.headers["Retry-After"]
        else:
            assert during.status_code == 200
            assert during.json()["status"] == "success"
            assert "X-RateLimit-Limit" not in during.headers

        redis_proxy.restore()
        recovered = await run_hello(client, account)
        assert recovered.status_code == 200
        assert recovered.headers["X-RateLimit-Limit"] == "10"
        assert (await client.get("/health")).status_code == 200


async def test_refusals_are_security_events_and_metrics(
    limited_server: LiveServer, migrated_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    account = await create_account(migrated_database_url, tier="free")
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=30) as client:
        for _ in range(12):
            await run_hello(client, account)
        metrics = (await client.get("/metrics")).text
    assert 'wasmwiz_requests_refused_total{code="rate_limited"} 2.0' in metrics
    assert 'wasmwiz_executions_total{outcome="success",tier="free"} 10.0' in metrics
    events = [r for r in caplog.records if getattr(r, "event", None) == "rate_limit_refusal"]
    assert len(events) == 2
    assert {(r.key_id, r.tier, r.limit) for r in events} == {  # type: ignore[attr-defined]
        (str(account.api_key_id), "free", "rate_limited")
    }
