"""Creating API keys: the creation limit is spent before the write transaction begins."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import redis.asyncio
from sqlalchemy import event, func, select

from tests.fixtures.app import TEST_SALT
from tests.persistence.factories import make_user
from wasmwiz.errors import LimitExceeded
from wasmwiz.observability.metrics import Metrics
from wasmwiz.persistence import ApiKey, Database
from wasmwiz.ratelimit import Decision, ManualClock, MemoryRateLimiter, Quota, RedisRateLimiter
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.rate_limits import KeyCreationLimit

pytestmark = pytest.mark.anyio

REDIS_URL = os.environ.get("WASMWIZ_TEST_REDIS_URL")
START = 1_700_000_000.0


class _Recording:
    """A real limiter's `consume`, noted in the same list as the database's events."""

    events: list[str]

    async def consume(self, key: str, quota: Quota) -> Decision:
        self.events.append("limiter")
        decision: Decision = await super().consume(key, quota)  # type: ignore[misc]
        return decision


class _RecordingMemory(_Recording, MemoryRateLimiter):
    pass


class _RecordingRedis(_Recording, RedisRateLimiter):
    pass


@pytest.fixture
def events() -> list[str]:
    return []


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def limiter(request: pytest.FixtureRequest, events: list[str]) -> AsyncIterator[Any]:
    clock = ManualClock(START)
    if request.param == "memory":
        made: Any = _RecordingMemory(clock)
        made.events = events
        yield made
        return
    if REDIS_URL is None:
        pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
    prefix = f"wasmwiz:test:{uuid.uuid4().hex}:"
    made = _RecordingRedis.from_url(REDIS_URL, clock=clock, prefix=prefix, timeout_seconds=10)
    made.events = events
    try:
        yield made
    finally:
        await made.close()
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            if keys := [key async for key in client.scan_iter(match=f"{prefix}*")]:
                await client.delete(*keys)
        finally:
            await client.aclose()


@pytest.fixture
def watched(database: Database, events: list[str]) -> Iterator[Database]:
    """`database`, its connections taken from the pool and transactions begun noted."""

    def checkout(*_: object) -> None:
        events.append("checkout")

    def begin(*_: object) -> None:
        events.append("begin")

    engine = database.engine.sync_engine
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "begin", begin)
    try:
        yield database
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "begin", begin)


async def _count_keys(database: Database, user_id: uuid.UUID) -> int:
    async with database.session() as session:
        count = await session.scalar(
            select(func.count()).select_from(ApiKey).where(ApiKey.user_id == user_id)
        )
    return count or 0


async def test_the_limit_is_spent_before_the_transaction_and_a_refusal_opens_none(
    database: Database, limiter: Any, events: list[str], watched: Database
) -> None:
    async with database.writer() as session:
        user = await make_user(session, tier="pro")
        await session.commit()
    limit = KeyCreationLimit(limiter, Metrics(), Quota(per_minute=2, per_day=100), fail_open=False)
    service = ApiKeyService(TEST_SALT, creation_limit=limit)
    events.clear()
    for _ in range(2):
        async with database.writer() as session:
            await service.create(session, user.id, name="k")
            await session.commit()
    assert events == ["limiter", "checkout", "begin"] * 2

    events.clear()
    async with database.writer() as session:
        with pytest.raises(LimitExceeded):
            await service.create(session, user.id, name="k")
    assert events == ["limiter"]  # no connection, no transaction, nothing written
    assert await _count_keys(database, user.id) == 2


async def test_a_session_already_in_a_transaction_is_refused_before_spending(
    database: Database, limiter: Any, events: list[str]
) -> None:
    limit = KeyCreationLimit(limiter, Metrics(), Quota(per_minute=2, per_day=100), fail_open=False)
    service = ApiKeyService(TEST_SALT, creation_limit=limit)
    async with database.writer() as session:
        user = await make_user(session, tier="pro")
        with pytest.raises(RuntimeError, match="before the transaction begins"):
            await service.create(session, user.id, name="k")
    assert events == []
