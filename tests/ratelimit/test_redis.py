"""What only the Redis backend promises: atomicity across replicas, and failing fast."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio

from tests.ratelimit.conftest import REDIS_URL, REQUIRES_REDIS, RedisLimiterFactory
from wasmwiz.ratelimit import ManualClock, Quota, RateLimiterUnavailable, RedisRateLimiter

pytestmark = [pytest.mark.anyio, *REQUIRES_REDIS]

TIERS = [
    pytest.param(Quota(per_minute=10, per_day=500), id="free"),
    pytest.param(Quota(per_minute=100, per_day=10_000), id="basic"),
    pytest.param(Quota(per_minute=500, per_day=50_000), id="pro"),
]
FREE = Quota(per_minute=10, per_day=500)
UNREACHABLE = "redis://127.0.0.1:1/0"

Call = Callable[[RedisRateLimiter], Awaitable[object]]


@pytest.fixture
async def client() -> AsyncIterator[redis.asyncio.Redis]:
    assert REDIS_URL is not None
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


@pytest.mark.parametrize("quota", TIERS)
async def test_two_replicas_never_spend_more_than_the_bucket(
    redis_limiter_factory: RedisLimiterFactory, quota: Quota
) -> None:
    replicas = [redis_limiter_factory(), redis_limiter_factory()]
    attempts = 3 * quota.per_minute

    decisions = await asyncio.gather(
        *(replicas[i % 2].consume("k", quota) for i in range(attempts))
    )

    assert sum(d.allowed for d in decisions) == quota.per_minute
    after = await replicas[0].peek("k", quota)
    assert (after.remaining, after.daily_remaining) == (0, quota.per_day - quota.per_minute)


async def test_two_replicas_never_hand_out_more_slots_than_the_cap(
    redis_limiter_factory: RedisLimiterFactory,
) -> None:
    replicas = [redis_limiter_factory(), redis_limiter_factory()]

    leases = await asyncio.gather(*(replicas[i % 2].acquire_slot("k", 7) for i in range(40)))

    assert sum(lease is not None for lease in leases) == 7


async def test_two_replicas_admit_within_both_the_cap_and_the_bucket(
    redis_limiter_factory: RedisLimiterFactory,
) -> None:
    replicas = [redis_limiter_factory(), redis_limiter_factory()]
    quota = Quota(per_minute=10, per_day=500)

    # Nothing is released: at most 7 slots, whatever the bucket still holds.
    first = await asyncio.gather(*(replicas[i % 2].admit("k", quota, 7) for i in range(40)))
    assert sum(a.lease is not None for a in first) == 7
    assert sum(a.at_concurrency_cap for a in first) == 33
    assert (await replicas[0].peek("k", quota)).remaining == 3  # only the admitted spent

    # Slots given back: now the bucket's 3 remaining tokens are the limit.
    for admitted in first:
        if admitted.lease is not None:
            await replicas[0].release_slot("k", admitted.lease)
    second = await asyncio.gather(*(replicas[i % 2].admit("k", quota, 7) for i in range(40)))
    assert sum(a.lease is not None for a in second) == 3
    assert sum(a.decision.refusal is not None and not a.at_concurrency_cap for a in second) == 37


async def test_idle_keys_expire(client: redis.asyncio.Redis, clock: ManualClock) -> None:
    prefix = f"wasmwiz:test:{uuid.uuid4().hex}:"
    limiter = RedisRateLimiter(client, clock=clock, prefix=prefix)
    await limiter.consume("k", FREE)
    await limiter.acquire_slot("k", 1, lease_seconds=30)

    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    try:
        ttls = {key.decode().rsplit(":", 1)[-1]: await client.pttl(key) for key in keys}
    finally:
        await client.delete(*keys)

    # Each key outlives the state it holds by a margin: the 6 s to refill one token plus
    # a minute, the 30 s lease plus a minute, the 12 h to midnight plus an hour.
    assert sorted(ttls) == ["2024-03-01", "bucket", "slots"]
    assert 60_000 < ttls["bucket"] <= 66_000
    assert 60_000 < ttls["slots"] <= 90_000
    assert 12 * 3_600_000 < ttls["2024-03-01"] <= 13 * 3_600_000


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda r: r.consume("k", FREE), id="consume"),
        pytest.param(lambda r: r.peek("k", FREE), id="peek"),
        pytest.param(lambda r: r.acquire_slot("k", 1), id="acquire_slot"),
        pytest.param(lambda r: r.admit("k", FREE, 1), id="admit"),
        pytest.param(lambda r: r.release_slot("k", "lease"), id="release_slot"),
        pytest.param(lambda r: r.ping(), id="ping"),
    ],
)
async def test_unreachable_redis_raises_unavailable_quickly(call: Call) -> None:
    limiter = RedisRateLimiter.from_url(UNREACHABLE)
    started = time.monotonic()
    try:
        with pytest.raises(RateLimiterUnavailable):
            await call(limiter)
    finally:
        await limiter.close()
    assert time.monotonic() - started < 1.0
    assert limiter.errors == 1  # what wasmwiz_rate_limiter_errors_total counts


async def test_a_client_passed_in_is_left_open(client: redis.asyncio.Redis) -> None:
    limiter = RedisRateLimiter(client, prefix="wasmwiz:test:unused:")
    await limiter.ping()

    await limiter.close()

    assert await client.ping()
