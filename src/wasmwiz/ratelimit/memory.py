"""An in-process rate limiter for a single replica, development and tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from wasmwiz.ratelimit.bucket import decide, has_token, refill, refusing_budget, utc_day
from wasmwiz.ratelimit.clock import Clock, SystemClock
from wasmwiz.ratelimit.model import AdmitOutcome, Budget, Decision, Quota, RateLimiter

_SWEEP_INTERVAL_SECONDS = 60.0
_SWEEP_MIN_ENTRIES = 1024


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated_at: float
    capacity: int


class MemoryRateLimiter(RateLimiter):
    """Token buckets, daily counters and leases in dicts.

    Safe for concurrent tasks on one event loop: no method awaits between reading and
    writing its state, so each check-and-spend runs without interleaving. Not shared
    between processes or threads; use RedisRateLimiter for more than one replica.

    Memory stays bounded by what is in use: a bucket that has refilled is the same as no
    bucket, so sweeps drop full buckets, past days' counters and lapsed leases.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self.errors = 0  # nothing to fail: the buckets are in this process
        self._clock: Clock = SystemClock() if clock is None else clock
        self._buckets: dict[str, _Bucket] = {}
        self._daily: dict[str, tuple[int, int]] = {}
        self._leases: dict[str, dict[str, float]] = {}
        self._last_sweep = self._clock.now()
        self._entries_after_sweep = 0
        # Lease ids only need to be unique within this process.
        self._lease_ids = itertools.count(1)

    @property
    def tracked_keys(self) -> int:
        """How many entries hold state (buckets, daily counters, lease sets)."""
        return len(self._buckets) + len(self._daily) + len(self._leases)

    async def consume(self, key: str, quota: Quota) -> Decision:
        return self._decide(key, quota, spend=True)

    async def peek(self, key: str, quota: Quota) -> Decision:
        return self._decide(key, quota, spend=False)

    async def acquire_slot(
        self, key: str, max_concurrent: int, lease_seconds: float = 300.0
    ) -> str | None:
        return self._acquire(key, max_concurrent, lease_seconds)

    async def admit(
        self, key: str, quota: Quota, max_concurrent: int, lease_seconds: float = 300.0
    ) -> AdmitOutcome:
        # No await in here: the slot and the spend are one step on the event loop.
        lease = self._acquire(key, max_concurrent, lease_seconds)
        if lease is None:
            return AdmitOutcome(None, self._decide(key, quota, spend=False), True)
        decision = self._decide(key, quota, spend=True)
        if not decision.allowed:
            self._release(key, lease)
            lease = None
        return AdmitOutcome(lease, decision, False)

    async def admit_all(
        self, budgets: Sequence[Budget], lease_seconds: float = 300.0, *, cost: int = 1
    ) -> AdmitOutcome:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        if cost < 1:
            raise ValueError("cost must be at least 1")
        # No await in here either: every budget is checked, then all are spent, in one step.
        now = self._clock.now()
        at_cap = [len(self._live_leases(b.key, now)) >= b.max_concurrent for b in budgets]
        decisions = [self._decide(b.key, b.quota, spend=False, cost=cost) for b in budgets]
        refused = refusing_budget(decisions, at_cap)
        if refused is not None:
            return AdmitOutcome(
                None, decisions[refused], at_cap[refused], refused, tuple(decisions)
            )
        lease_id = f"{next(self._lease_ids):x}"
        for budget in budgets:
            leases = self._live_leases(budget.key, now)
            leases[lease_id] = now + lease_seconds
            self._leases[budget.key] = leases
        decisions = [self._decide(b.key, b.quota, spend=True, cost=cost) for b in budgets]
        return AdmitOutcome(lease_id, decisions[0], False, None, tuple(decisions))

    async def release_all(self, keys: Sequence[str], lease_id: str) -> None:
        for key in keys:
            self._release(key, lease_id)

    def _acquire(self, key: str, max_concurrent: int, lease_seconds: float) -> str | None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        now = self._clock.now()
        self._maybe_sweep(now)
        leases = self._live_leases(key, now)
        if len(leases) >= max_concurrent:
            return None
        lease_id = f"{next(self._lease_ids):x}"
        leases[lease_id] = now + lease_seconds
        self._leases[key] = leases
        return lease_id

    async def release_slot(self, key: str, lease_id: str) -> None:
        self._release(key, lease_id)

    def _release(self, key: str, lease_id: str) -> None:
        leases = self._leases.get(key)
        if leases is None:
            return
        leases.pop(lease_id, None)
        if not leases:
            del self._leases[key]

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        self._buckets.clear()
        self._daily.clear()
        self._leases.clear()

    def _decide(self, key: str, quota: Quota, *, spend: bool, cost: int = 1) -> Decision:
        now = self._clock.now()
        self._maybe_sweep(now)
        bucket = self._buckets.get(key)
        if bucket is None:
            tokens, updated_at = refill(None, now, now, quota.per_minute), now
        else:
            tokens = refill(bucket.tokens, bucket.updated_at, now, quota.per_minute)
            updated_at = max(bucket.updated_at, now)
        day = utc_day(now)
        counter_day, used = self._daily.get(key, (day, 0))
        if counter_day != day:
            used = 0
        minute_ok = has_token(tokens - (cost - 1))
        day_ok = used + cost <= quota.per_day
        if spend and minute_ok and day_ok:
            # has_token allows a hair under 1; never store a negative balance.
            tokens = max(0.0, tokens - cost)
            used += cost
            self._buckets[key] = _Bucket(tokens, updated_at, quota.per_minute)
            self._daily[key] = (day, used)
        return decide(
            quota, now=now, tokens=tokens, daily_used=used, minute_ok=minute_ok, day_ok=day_ok
        )

    def _live_leases(self, key: str, now: float) -> dict[str, float]:
        leases = self._leases.get(key, {})
        return {lease: expiry for lease, expiry in leases.items() if expiry > now}

    def _maybe_sweep(self, now: float) -> None:
        # Sweep once a minute, or sooner when the tables have doubled since the last sweep,
        # so a burst of new keys under a stopped clock cannot grow memory without bound
        # while the cost per call stays amortised O(1).
        grown = self.tracked_keys > max(_SWEEP_MIN_ENTRIES, 2 * self._entries_after_sweep)
        if not grown and now - self._last_sweep < _SWEEP_INTERVAL_SECONDS:
            return
        self.sweep(now)

    def sweep(self, now: float | None = None) -> None:
        """Drop state that no longer changes any decision."""
        if now is None:
            now = self._clock.now()
        day = utc_day(now)
        self._buckets = {
            key: b
            for key, b in self._buckets.items()
            if refill(b.tokens, b.updated_at, now, b.capacity) < b.capacity
        }
        self._daily = {key: c for key, c in self._daily.items() if c[0] == day}
        live = {key: self._live_leases(key, now) for key in self._leases}
        self._leases = {key: leases for key, leases in live.items() if leases}
        self._last_sweep = now
        self._entries_after_sweep = self.tracked_keys
