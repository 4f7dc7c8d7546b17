"""What only the in-memory backend promises: its memory stays bounded."""

from __future__ import annotations

import pytest

from wasmwiz.ratelimit import ManualClock, MemoryRateLimiter, Quota

pytestmark = pytest.mark.anyio

FREE = Quota(per_minute=10, per_day=500)


async def test_full_idle_buckets_and_past_days_are_dropped(clock: ManualClock) -> None:
    limiter = MemoryRateLimiter(clock)
    for i in range(100):
        await limiter.consume(f"key-{i}", FREE)
        await limiter.acquire_slot(f"key-{i}", 1, lease_seconds=30)
    assert limiter.tracked_keys == 300

    # A minute on, every bucket has refilled and every lease lapsed; only today's
    # counters still matter.
    clock.advance(60)
    await limiter.consume("another", FREE)
    assert limiter.tracked_keys == 100 + 2

    clock.advance(86_400)
    await limiter.peek("another", FREE)
    assert limiter.tracked_keys == 0


async def test_a_burst_of_new_keys_is_swept_without_waiting_for_the_clock(
    clock: ManualClock,
) -> None:
    limiter = MemoryRateLimiter(clock)
    for i in range(1000):
        await limiter.acquire_slot(f"key-{i}", 1, lease_seconds=0.5)
    clock.advance(1)

    for i in range(1000, 2000):
        await limiter.acquire_slot(f"key-{i}", 1, lease_seconds=0.5)

    # The tables doubled, so a sweep ran and dropped the first thousand lapsed leases.
    assert limiter.tracked_keys < 1100


async def test_a_dropped_bucket_reads_as_full(clock: ManualClock) -> None:
    limiter = MemoryRateLimiter(clock)
    for _ in range(10):
        await limiter.consume("k", FREE)
    clock.advance(60)
    limiter.sweep()

    decision = await limiter.consume("k", FREE)

    assert (decision.remaining, decision.daily_remaining) == (9, 489)
