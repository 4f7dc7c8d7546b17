"""The compile budget: a bucket of CPU seconds per minute that a compile may overdraw once."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio

from tests.ratelimit.conftest import REDIS_URL, REQUIRES_REDIS, _delete_keys
from wasmwiz.ratelimit import ManualClock, RateLimiterUnavailable
from wasmwiz.ratelimit.compile_budget import (
    CompileBudget,
    MemoryCompileBudget,
    RedisCompileBudget,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["memory", pytest.param("redis", marks=REQUIRES_REDIS)])
async def budget(
    request: pytest.FixtureRequest, clock: ManualClock
) -> AsyncIterator[CompileBudget]:
    if request.param == "memory":
        yield MemoryCompileBudget(clock)
        return
    assert REDIS_URL is not None
    prefix = f"wasmwiz:test:{uuid.uuid4().hex}:"
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    yield RedisCompileBudget(client, clock, prefix=prefix)
    await client.aclose()
    await _delete_keys(REDIS_URL, prefix)


async def test_a_fresh_account_may_compile(budget: CompileBudget) -> None:
    assert await budget.peek("user:a", 20) is None


async def test_a_compile_past_the_budget_leaves_a_debt_paid_back_by_the_refill(
    budget: CompileBudget, clock: ManualClock
) -> None:
    assert await budget.charge("user:a", 12.0, 20) is None  # 8 s left
    # 12 s more: 4 s of debt; at 20 s a minute that is 12 s of refill, and a compile
    # needs the bucket above zero: 13 s.
    assert await budget.charge("user:a", 12.0, 20) == 13
    assert await budget.peek("user:a", 20) == 13
    assert await budget.peek("user:b", 20) is None  # another account is untouched
    clock.advance(11.5)
    assert await budget.peek("user:a", 20) == 1
    clock.advance(0.6)
    assert await budget.peek("user:a", 20) is None


async def test_the_bucket_holds_at_most_one_minutes_budget(
    budget: CompileBudget, clock: ManualClock
) -> None:
    clock.advance(3600)
    assert await budget.charge("user:a", 20.0, 20) == 1  # empty, not 20 s left over
    clock.advance(3)
    assert await budget.peek("user:a", 20) is None


async def test_an_unreachable_redis_is_counted_as_an_error() -> None:
    budget = RedisCompileBudget.from_url("redis://127.0.0.1:1/0")
    try:
        with pytest.raises(RateLimiterUnavailable):
            await budget.charge("user:a", 1.0, 20)
    finally:
        await budget.close()
    assert budget.errors == 1  # what wasmwiz_rate_limiter_errors_total counts
