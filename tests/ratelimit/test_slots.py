"""Concurrency slots: leases up to a cap, released or lapsing, on every backend."""

from __future__ import annotations

import pytest

from wasmwiz.ratelimit import ManualClock, Quota, RateLimiter

pytestmark = pytest.mark.anyio


async def test_slots_up_to_the_cap(limiter: RateLimiter) -> None:
    leases = [await limiter.acquire_slot("k", 3) for _ in range(3)]

    assert None not in leases
    assert len(set(leases)) == 3
    assert await limiter.acquire_slot("k", 3) is None


async def test_release_frees_a_slot(limiter: RateLimiter) -> None:
    first = await limiter.acquire_slot("k", 2)
    assert first is not None
    assert await limiter.acquire_slot("k", 2) is not None
    assert await limiter.acquire_slot("k", 2) is None

    await limiter.release_slot("k", first)

    assert await limiter.acquire_slot("k", 2) is not None
    assert await limiter.acquire_slot("k", 2) is None


async def test_releasing_twice_or_an_unknown_lease_is_harmless(limiter: RateLimiter) -> None:
    lease = await limiter.acquire_slot("k", 1)
    assert lease is not None
    await limiter.release_slot("k", lease)
    await limiter.release_slot("k", lease)
    await limiter.release_slot("k", "no-such-lease")
    await limiter.release_slot("never-used", "no-such-lease")

    assert await limiter.acquire_slot("k", 1) is not None
    assert await limiter.acquire_slot("k", 1) is None


async def test_a_dead_holders_lease_lapses(limiter: RateLimiter, clock: ManualClock) -> None:
    assert await limiter.acquire_slot("k", 1, lease_seconds=60) is not None

    clock.advance(59.9)
    assert await limiter.acquire_slot("k", 1, lease_seconds=60) is None
    clock.advance(0.1)
    assert await limiter.acquire_slot("k", 1, lease_seconds=60) is not None


async def test_a_lapsed_lease_released_late_does_not_free_anothers_slot(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    slow = await limiter.acquire_slot("k", 1, lease_seconds=10)
    assert slow is not None
    clock.advance(10)
    assert await limiter.acquire_slot("k", 1, lease_seconds=10) is not None

    await limiter.release_slot("k", slow)

    assert await limiter.acquire_slot("k", 1, lease_seconds=10) is None


async def test_a_lowered_cap_applies_to_new_acquisitions(limiter: RateLimiter) -> None:
    for _ in range(3):
        assert await limiter.acquire_slot("k", 5) is not None

    assert await limiter.acquire_slot("k", 2) is None


async def test_slots_are_per_key(limiter: RateLimiter) -> None:
    assert await limiter.acquire_slot("alice", 1) is not None
    assert await limiter.acquire_slot("alice", 1) is None

    assert await limiter.acquire_slot("bob", 1) is not None


async def test_slots_do_not_touch_the_rate_budget(limiter: RateLimiter) -> None:
    quota = Quota(per_minute=10, per_day=500)
    for _ in range(3):
        await limiter.acquire_slot("k", 5)

    assert (await limiter.peek("k", quota)).remaining == 10


async def test_lease_seconds_must_be_positive(limiter: RateLimiter) -> None:
    with pytest.raises(ValueError, match="lease_seconds"):
        await limiter.acquire_slot("k", 1, lease_seconds=0)
