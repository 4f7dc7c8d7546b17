"""Concurrency slots: leases up to a cap, released or lapsing, on every backend; and
`admit`, a slot and a unit of budget taken in one step."""

from __future__ import annotations

import pytest

from wasmwiz.ratelimit import ManualClock, Quota, RateLimiter, Refusal

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


QUOTA = Quota(per_minute=3, per_day=100)


async def test_admit_takes_a_slot_and_spends_one_unit(limiter: RateLimiter) -> None:
    admitted = await limiter.admit("k", QUOTA, 2)

    assert admitted.lease is not None
    assert not admitted.at_concurrency_cap
    assert admitted.decision.allowed
    assert (admitted.decision.remaining, admitted.decision.daily_remaining) == (2, 99)
    # The slot is held: one more fits under a cap of 2, then none.
    assert await limiter.acquire_slot("k", 2) is not None
    assert await limiter.acquire_slot("k", 2) is None

    await limiter.release_slot("k", admitted.lease)
    assert await limiter.acquire_slot("k", 2) is not None


async def test_admit_at_the_cap_spends_nothing(limiter: RateLimiter) -> None:
    held = await limiter.admit("k", QUOTA, 1)
    assert held.lease is not None

    refused = await limiter.admit("k", QUOTA, 1)

    assert refused.lease is None
    assert refused.at_concurrency_cap
    # The figures peek gives: the first admission's spend, nothing more.
    assert refused.decision == await limiter.peek("k", QUOTA)
    assert (refused.decision.remaining, refused.decision.daily_remaining) == (2, 99)


async def test_admit_refused_by_the_minute_holds_no_slot(limiter: RateLimiter) -> None:
    for _ in range(3):
        admitted = await limiter.admit("k", QUOTA, 5)
        assert admitted.lease is not None
        await limiter.release_slot("k", admitted.lease)

    refused = await limiter.admit("k", QUOTA, 1)

    assert refused.lease is None
    assert not refused.at_concurrency_cap
    assert refused.decision.refusal is Refusal.RATE_LIMITED
    assert refused.decision.daily_remaining == 97  # nothing spent by the refusal
    # No slot was left behind: the only one under a cap of 1 is free.
    assert await limiter.acquire_slot("k", 1) is not None


async def test_admit_refused_by_the_day_holds_no_slot(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    quota = Quota(per_minute=60, per_day=2)
    for _ in range(2):
        admitted = await limiter.admit("k", quota, 1)
        assert admitted.lease is not None
        await limiter.release_slot("k", admitted.lease)
        clock.advance(1)

    refused = await limiter.admit("k", quota, 1)

    assert refused.lease is None
    assert refused.decision.refusal is Refusal.DAILY_QUOTA_EXCEEDED
    assert await limiter.acquire_slot("k", 1) is not None
