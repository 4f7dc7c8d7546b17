"""`admit_all`: an account's budget and a key's inside it, admitted together or not at all,
on every backend; a refusal by one budget never spends the other."""

from __future__ import annotations

import asyncio

import pytest

from tests.ratelimit.conftest import RedisLimiterFactory
from wasmwiz.ratelimit import Budget, ManualClock, Quota, RateLimiter, Refusal

pytestmark = pytest.mark.anyio

ACCOUNT = Budget("user:a", Quota(per_minute=10, per_day=100), 3)
KEY = Budget("user:a/key:k", Quota(per_minute=4, per_day=100), 2)
OTHER_KEY = Budget("user:a/key:o", Quota(per_minute=10, per_day=100), 3)


async def test_both_budgets_are_spent_and_hold_the_lease(limiter: RateLimiter) -> None:
    admitted = await limiter.admit_all([ACCOUNT, KEY])

    assert admitted.lease is not None
    assert admitted.refused_by is None
    assert [d.remaining for d in admitted.decisions] == [9, 3]
    assert admitted.decision == admitted.decisions[0]
    # The lease holds a slot in both: the key's cap of 2 leaves one, the account's 3 two.
    assert await limiter.acquire_slot(KEY.key, 2) is not None
    assert await limiter.acquire_slot(KEY.key, 2) is None
    await limiter.release_all([ACCOUNT.key, KEY.key], admitted.lease)
    assert await limiter.acquire_slot(ACCOUNT.key, 1) is not None


async def test_a_refusal_by_the_key_spends_nothing_of_the_account(limiter: RateLimiter) -> None:
    for _ in range(4):
        admitted = await limiter.admit_all([ACCOUNT, KEY])
        assert admitted.lease is not None
        await limiter.release_all([ACCOUNT.key, KEY.key], admitted.lease)

    refused = await limiter.admit_all([ACCOUNT, KEY])

    assert refused.lease is None
    assert refused.refused_by == 1
    assert refused.decision.refusal is Refusal.RATE_LIMITED
    assert refused.decision.limit == 4
    account_now = await limiter.peek(ACCOUNT.key, ACCOUNT.quota)
    assert (account_now.remaining, account_now.daily_remaining) == (6, 96)
    # The account's other keys still have its remaining six.
    for _ in range(6):
        other = await limiter.admit_all([ACCOUNT, OTHER_KEY])
        assert other.lease is not None
        await limiter.release_all([ACCOUNT.key, OTHER_KEY.key], other.lease)
    assert (await limiter.admit_all([ACCOUNT, OTHER_KEY])).refused_by == 0


async def test_a_refusal_by_the_account_spends_nothing_of_the_key(limiter: RateLimiter) -> None:
    for _ in range(10):
        admitted = await limiter.admit_all([ACCOUNT, OTHER_KEY])
        assert admitted.lease is not None
        await limiter.release_all([ACCOUNT.key, OTHER_KEY.key], admitted.lease)

    refused = await limiter.admit_all([ACCOUNT, KEY])

    assert refused.refused_by == 0
    assert refused.decision.limit == 10
    assert (await limiter.peek(KEY.key, KEY.quota)).remaining == 4


async def test_concurrency_is_capped_by_the_account_across_keys(limiter: RateLimiter) -> None:
    held = [await limiter.admit_all([ACCOUNT, KEY]), await limiter.admit_all([ACCOUNT, KEY])]
    assert all(admitted.lease for admitted in held)
    # The key is at its own cap of 2; the account has one slot left for another key.
    by_key = await limiter.admit_all([ACCOUNT, KEY])
    assert by_key.at_concurrency_cap
    assert by_key.refused_by == 1
    third = await limiter.admit_all([ACCOUNT, OTHER_KEY])
    assert third.lease is not None
    by_account = await limiter.admit_all([ACCOUNT, OTHER_KEY])
    assert by_account.at_concurrency_cap
    assert by_account.refused_by == 0
    # Nothing was spent by the refusals.
    assert (await limiter.peek(ACCOUNT.key, ACCOUNT.quota)).remaining == 7


async def test_the_longest_wait_is_reported(limiter: RateLimiter, clock: ManualClock) -> None:
    tight_day = Budget("user:b", Quota(per_minute=10, per_day=1), 3)
    tight_key = Budget("user:b/key:k", Quota(per_minute=1, per_day=100), 3)
    admitted = await limiter.admit_all([tight_day, tight_key])
    assert admitted.lease is not None

    refused = await limiter.admit_all([tight_day, tight_key])

    # Both refuse; the day's wait (until midnight) is longer than the key's minute.
    assert refused.refused_by == 0
    assert refused.decision.refusal is Refusal.DAILY_QUOTA_EXCEEDED


async def test_parallel_admissions_never_exceed_either_budget(
    redis_limiter_factory: RedisLimiterFactory,
) -> None:
    replicas = [redis_limiter_factory() for _ in range(3)]
    keys = [Budget(f"user:c/key:{n}", Quota(per_minute=4, per_day=100), 5) for n in range(3)]
    account = Budget("user:c", Quota(per_minute=10, per_day=100), 50)

    results = await asyncio.gather(
        *(replicas[n % 3].admit_all([account, keys[n % 3]], lease_seconds=60) for n in range(30))
    )

    admitted = [result for result in results if result.lease is not None]
    assert len(admitted) == 10
    per_key = [sum(1 for n, r in enumerate(results) if r.lease and n % 3 == k) for k in range(3)]
    assert all(count <= 4 for count in per_key)


async def test_a_cost_is_spent_whole_from_every_budget_or_not_at_all(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    # A batch of runs: its size spent at once, still one slot held.
    batch = await limiter.admit_all([ACCOUNT, OTHER_KEY], cost=7)
    assert batch.lease is not None
    assert [d.remaining for d in batch.decisions] == [3, 3]
    assert [d.daily_remaining for d in batch.decisions] == [93, 93]
    await limiter.release_all([ACCOUNT.key, OTHER_KEY.key], batch.lease)

    too_many = await limiter.admit_all([ACCOUNT, OTHER_KEY], cost=4)

    assert too_many.lease is None
    assert too_many.decision.refusal is Refusal.RATE_LIMITED
    assert [d.remaining for d in too_many.decisions] == [3, 3]  # nothing spent
    assert (await limiter.admit_all([ACCOUNT, OTHER_KEY], cost=3)).lease is not None


async def test_a_cost_past_the_day_s_quota_is_refused_whole(
    limiter: RateLimiter, clock: ManualClock
) -> None:
    day = Budget("user:d", Quota(per_minute=100, per_day=10), 5)
    first = await limiter.admit_all([day], cost=8)
    assert first.lease is not None

    refused = await limiter.admit_all([day], cost=3)

    assert refused.lease is None
    assert refused.decision.refusal is Refusal.DAILY_QUOTA_EXCEEDED
    assert refused.decision.daily_remaining == 2
    assert (await limiter.admit_all([day], cost=2)).lease is not None
