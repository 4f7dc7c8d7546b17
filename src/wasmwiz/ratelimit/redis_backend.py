"""A rate limiter shared by every replica through Redis, one Lua script per decision."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from wasmwiz.ratelimit import redis_scripts
from wasmwiz.ratelimit.bucket import (
    EPSILON,
    decide,
    refusing_budget,
    seconds_until_midnight,
    utc_date,
)
from wasmwiz.ratelimit.clock import Clock, SystemClock
from wasmwiz.ratelimit.model import (
    AdmitOutcome,
    Budget,
    Decision,
    Quota,
    RateLimiter,
    RateLimiterUnavailable,
)

# Keys outlive the state they hold by this much, measured by Redis' own clock, so an
# injected clock (or replicas' clock skew) never makes Redis drop live state early.
_IDLE_MARGIN_MS = 60_000
_DAILY_MARGIN_MS = 3_600_000


@contextmanager
def _unavailable_on_error(limiter: RedisRateLimiter) -> Iterator[None]:
    # Every failure to get an answer, not only connection errors: READONLY after a
    # failover, OOM or LOADING mean the limiter cannot decide, and the caller's fail-open
    # or fail-closed policy is the right response to all of them.
    try:
        yield
    except (redis.exceptions.RedisError, OSError) as exc:
        limiter.errors += 1
        raise RateLimiterUnavailable(f"Redis rate limiter unavailable: {exc!r}") from exc


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _decision(quota: Quota, now: float, budget: list[Any]) -> Decision:
    """A Decision from the budget part of a script's reply: {minute_ok, day_ok, tokens, used}."""
    minute_ok, day_ok, tokens, used = budget
    return decide(
        quota,
        now=now,
        tokens=float(_text(tokens)),
        daily_used=int(used),
        minute_ok=int(minute_ok) == 1,
        day_ok=int(day_ok) == 1,
    )


class RedisRateLimiter(RateLimiter):
    """Token buckets, daily counters and leases in Redis.

    Keys are ``{prefix}{{{key}}}:...``; the braces are a Cluster hash tag, so the keys a
    script touches always share a slot. Pass an identifier as ``key`` (an API key's id),
    never a secret: it appears in Redis key names. A key ``outer/inner`` is a budget nested
    in ``outer`` (a key's own budget inside its account's): it takes ``outer``'s hash tag,
    so ``admit_all`` over an account and its key touches one Cluster slot.

    ``close()`` closes the Redis client only when this limiter created it (``from_url``);
    a client passed in belongs to the caller.
    """

    def __init__(
        self,
        redis: redis.asyncio.Redis,
        clock: Clock | None = None,
        prefix: str = "wasmwiz:rl:",
    ) -> None:
        self._redis = redis
        self._clock: Clock = SystemClock() if clock is None else clock
        self._prefix = prefix
        self._owns_client = False
        self.errors = 0
        self._decide_script = redis.register_script(redis_scripts.DECIDE)
        self._acquire_script = redis.register_script(redis_scripts.ACQUIRE_SLOT)
        self._admit_script = redis.register_script(redis_scripts.ADMIT)
        self._admit_all_script = redis.register_script(redis_scripts.ADMIT_ALL)

    @property
    def client(self) -> redis.asyncio.Redis:
        """The Redis client (for its tracing: observability/instrumentation.py)."""
        return self._redis

    @classmethod
    def from_url(
        cls,
        url: str,
        clock: Clock | None = None,
        prefix: str = "wasmwiz:rl:",
        *,
        timeout_seconds: float = 0.5,
        max_connections: int = 50,
    ) -> Self:
        """A limiter owning its own client, with short timeouts so a dead Redis shows fast.

        ``timeout_seconds`` bounds connecting, each reply, and waiting for a free pooled
        connection. The pool is bounded and callers queue for it, so a burst of requests
        cannot open thousands of sockets. No retries: a script whose reply was lost may
        already have spent, and retrying would spend twice; the caller gets
        RateLimiterUnavailable and applies its fail-open or fail-closed policy.
        """
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        limiter = cls(redis.asyncio.Redis.from_pool(pool), clock=clock, prefix=prefix)
        limiter._owns_client = True
        return limiter

    async def consume(self, key: str, quota: Quota) -> Decision:
        return await self._decide(key, quota, spend=True)

    async def peek(self, key: str, quota: Quota) -> Decision:
        return await self._decide(key, quota, spend=False)

    async def acquire_slot(
        self, key: str, max_concurrent: int, lease_seconds: float = 300.0
    ) -> str | None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        now = self._clock.now()
        lease_id = secrets.token_urlsafe(16)
        args: list[str | int] = [
            repr(now),
            max_concurrent,
            lease_id,
            repr(now + lease_seconds),
            _IDLE_MARGIN_MS,
        ]
        with _unavailable_on_error(self):
            granted = await self._acquire_script(keys=[self._slots_key(key)], args=args)
        return lease_id if int(granted) == 1 else None

    async def admit(
        self, key: str, quota: Quota, max_concurrent: int, lease_seconds: float = 300.0
    ) -> AdmitOutcome:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        now = self._clock.now()
        lease_id = secrets.token_urlsafe(16)
        keys = [self._bucket_key(key), self._daily_key(key, now), self._slots_key(key)]
        args = [
            *self._budget_args(now, quota, spend=True),
            max_concurrent,
            lease_id,
            repr(now + lease_seconds),
        ]
        with _unavailable_on_error(self):
            reply = await self._admit_script(keys=keys, args=args)
        at_cap, *budget = reply
        decision = _decision(quota, now, budget)
        at_concurrency_cap = int(at_cap) == 1
        admitted = not at_concurrency_cap and decision.allowed
        return AdmitOutcome(lease_id if admitted else None, decision, at_concurrency_cap)

    async def admit_all(
        self, budgets: Sequence[Budget], lease_seconds: float = 300.0, *, cost: int = 1
    ) -> AdmitOutcome:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        if cost < 1:
            raise ValueError("cost must be at least 1")
        now = self._clock.now()
        lease_id = secrets.token_urlsafe(16)
        keys: list[str] = []
        args: list[str | int] = [
            repr(now),
            repr(EPSILON),
            seconds_until_midnight(now) * 1000 + _DAILY_MARGIN_MS,
            _IDLE_MARGIN_MS,
            lease_id,
            repr(now + lease_seconds),
        ]
        for budget in budgets:
            keys += [
                self._bucket_key(budget.key),
                self._daily_key(budget.key, now),
                self._slots_key(budget.key),
            ]
            args += [budget.quota.per_minute, budget.quota.per_day, budget.max_concurrent]
        args.append(cost)
        with _unavailable_on_error(self):
            reply = await self._admit_all_script(keys=keys, args=args)
        admitted = int(reply[0]) == 1
        at_cap: list[bool] = []
        decisions: list[Decision] = []
        for index, budget in enumerate(budgets):
            full, *figures = reply[1 + 5 * index : 6 + 5 * index]
            at_cap.append(int(full) == 1)
            decisions.append(_decision(budget.quota, now, figures))
        if admitted:
            return AdmitOutcome(lease_id, decisions[0], False, None, tuple(decisions))
        refused = refusing_budget(decisions, at_cap)
        assert refused is not None, "the script refused, so some budget did"
        return AdmitOutcome(None, decisions[refused], at_cap[refused], refused, tuple(decisions))

    async def release_all(self, keys: Sequence[str], lease_id: str) -> None:
        if not keys:
            return
        with _unavailable_on_error(self):
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.zrem(self._slots_key(key), lease_id)
                await pipe.execute()

    async def release_slot(self, key: str, lease_id: str) -> None:
        with _unavailable_on_error(self):
            await self._redis.zrem(self._slots_key(key), lease_id)

    async def ping(self) -> None:
        with _unavailable_on_error(self):
            await self._redis.ping()

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

    async def _decide(self, key: str, quota: Quota, *, spend: bool) -> Decision:
        now = self._clock.now()
        keys = [self._bucket_key(key), self._daily_key(key, now)]
        with _unavailable_on_error(self):
            reply = await self._decide_script(
                keys=keys, args=self._budget_args(now, quota, spend=spend)
            )
        return _decision(quota, now, reply)

    @staticmethod
    def _budget_args(now: float, quota: Quota, *, spend: bool) -> list[str | int]:
        # repr() of a float is the shortest string that parses back to the same double.
        return [
            repr(now),
            quota.per_minute,
            quota.per_day,
            1 if spend else 0,
            repr(EPSILON),
            seconds_until_midnight(now) * 1000 + _DAILY_MARGIN_MS,
            _IDLE_MARGIN_MS,
        ]

    def _name(self, key: str) -> str:
        outer, slash, inner = key.partition("/")
        return f"{self._prefix}{{{outer}}}{slash}{inner}"

    def _bucket_key(self, key: str) -> str:
        return f"{self._name(key)}:bucket"

    def _daily_key(self, key: str, now: float) -> str:
        return f"{self._name(key)}:day:{utc_date(now)}"

    def _slots_key(self, key: str) -> str:
        return f"{self._name(key)}:slots"
