"""Fixtures for the rate-limit suite: a manual clock and each backend built on it."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio

from wasmwiz.ratelimit import ManualClock, MemoryRateLimiter, RateLimiter, RedisRateLimiter

REDIS_URL = os.environ.get("WASMWIZ_TEST_REDIS_URL")
REQUIRES_REDIS = [
    pytest.mark.redis,
    pytest.mark.skipif(
        REDIS_URL is None, reason="WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped"
    ),
]

# 2024-03-01 12:00:00 UTC: a whole second, far from midnight. Tests about the daily reset
# move the clock themselves.
NOON = 1_709_294_400.0

RedisLimiterFactory = Callable[[], RedisRateLimiter]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON)


async def _delete_keys(url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_limiter_factory(clock: ManualClock) -> AsyncIterator[RedisLimiterFactory]:
    """Makes Redis limiters sharing one fresh prefix, each with its own connection pool.

    Afterwards they are closed and every key under the prefix is deleted.
    """
    if REDIS_URL is None:
        pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
    url = REDIS_URL
    prefix = f"wasmwiz:test:{uuid.uuid4().hex}:"
    made: list[RedisRateLimiter] = []

    def make() -> RedisRateLimiter:
        # These limiters are raced against each other with hundreds of calls at once; a
        # generous timeout keeps a busy test machine from turning the race into timeouts.
        made.append(RedisRateLimiter.from_url(url, clock=clock, prefix=prefix, timeout_seconds=10))
        return made[-1]

    yield make
    for limiter in made:
        await limiter.close()
    await _delete_keys(url, prefix)


@pytest.fixture(params=["memory", pytest.param("redis", marks=REQUIRES_REDIS)])
async def limiter(request: pytest.FixtureRequest, clock: ManualClock) -> AsyncIterator[RateLimiter]:
    """Each backend in turn, on the same manual clock."""
    if request.param == "memory":
        memory = MemoryRateLimiter(clock)
        yield memory
        await memory.close()
        return
    assert REDIS_URL is not None
    prefix = f"wasmwiz:test:{uuid.uuid4().hex}:"
    redis_limiter = RedisRateLimiter.from_url(
        REDIS_URL, clock=clock, prefix=prefix, timeout_seconds=10
    )
    yield redis_limiter
    await redis_limiter.close()
    await _delete_keys(REDIS_URL, prefix)
