"""Per-account compile budgets: CPU seconds of compiling per minute, in memory or in Redis.

A token bucket measured in seconds. It holds at most one minute's budget and refills
continuously at budget / 60 per second. A compile is allowed while the bucket holds
anything; its cost is known only afterwards and is then taken out whole, so the bucket
can go negative (a debt) and the account waits until the refill has paid it back. The
debt is bounded by what compiles can cost: each is cut off at the compile timeout.

In Redis every replica charges and reads the same bucket, so the budget is the
account's, whichever replica compiles.
"""

from __future__ import annotations

import math
from typing import Protocol, Self

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from wasmwiz.ratelimit.clock import Clock, SystemClock
from wasmwiz.ratelimit.model import RateLimiterUnavailable

_CHARGE = """
-- KEYS[1]: the bucket. ARGV: now, capacity (seconds), cost (seconds, 0 to peek)
local now = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = capacity
if state[1] then
  local elapsed = math.max(0, now - tonumber(state[2]))
  tokens = math.min(capacity, tonumber(state[1]) + elapsed * capacity / 60)
end
if cost > 0 then
  tokens = tokens - cost
  redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
  -- Kept until it has refilled, plus a minute; a full bucket is the same as none.
  local refill_ms = math.ceil((capacity - tokens) * 60000 / capacity)
  redis.call('PEXPIRE', KEYS[1], refill_ms + 60000)
end
return tostring(tokens)
"""


def refill(tokens: float | None, updated_at: float, now: float, capacity: int) -> float:
    if tokens is None:
        return float(capacity)
    return min(float(capacity), tokens + max(0.0, now - updated_at) * capacity / 60)


def retry_after(tokens: float, capacity: int) -> int | None:
    """None while the bucket holds budget; else whole seconds until it does (at least 1)."""
    if tokens > 0:
        return None
    return max(1, math.ceil(-tokens * 60 / capacity + 1e-9))


class CompileBudget(Protocol):
    """Each call returns None when the account may compile now, else the Retry-After."""

    errors: int
    """Calls that raised RateLimiterUnavailable since start (the metrics read it)."""

    async def peek(self, key: str, seconds_per_minute: int) -> int | None: ...

    async def charge(self, key: str, seconds: float, seconds_per_minute: int) -> int | None: ...

    async def close(self) -> None: ...


class MemoryCompileBudget(CompileBudget):
    """Buckets in a dict, for one replica (as MemoryRateLimiter): full ones are dropped."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = SystemClock() if clock is None else clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self.errors = 0  # nothing to fail: the buckets are in this process

    async def peek(self, key: str, seconds_per_minute: int) -> int | None:
        return retry_after(self._tokens(key, seconds_per_minute), seconds_per_minute)

    async def charge(self, key: str, seconds: float, seconds_per_minute: int) -> int | None:
        now = self._clock.now()
        tokens = self._tokens(key, seconds_per_minute) - seconds
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > 1024:
            self._buckets = {
                k: (t, at)
                for k, (t, at) in self._buckets.items()
                if refill(t, at, now, seconds_per_minute) < seconds_per_minute
            }
        return retry_after(tokens, seconds_per_minute)

    def _tokens(self, key: str, capacity: int) -> float:
        tokens, at = self._buckets.get(key, (None, 0.0))
        return refill(tokens, at, self._clock.now(), capacity)

    async def close(self) -> None:
        self._buckets.clear()


class RedisCompileBudget(CompileBudget):
    """The same bucket in Redis, one script per call, shared by every replica."""

    def __init__(
        self, client: redis.asyncio.Redis, clock: Clock | None = None, prefix: str = "wasmwiz:cb:"
    ) -> None:
        self._redis = client
        self._clock: Clock = SystemClock() if clock is None else clock
        self._prefix = prefix
        self._script = client.register_script(_CHARGE)
        self._owns_client = False
        self.errors = 0

    @property
    def client(self) -> redis.asyncio.Redis:
        """The Redis client (for its tracing: observability/instrumentation.py)."""
        return self._redis

    @classmethod
    def from_url(
        cls, url: str, clock: Clock | None = None, *, timeout_seconds: float = 0.5
    ) -> Self:
        """A budget owning its own small client, with the rate limiter's short timeouts."""
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=10,
            timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        budget = cls(redis.asyncio.Redis.from_pool(pool), clock=clock)
        budget._owns_client = True
        return budget

    async def peek(self, key: str, seconds_per_minute: int) -> int | None:
        return await self.charge(key, 0.0, seconds_per_minute)

    async def charge(self, key: str, seconds: float, seconds_per_minute: int) -> int | None:
        args: list[str | int] = [
            repr(self._clock.now()),
            seconds_per_minute,
            repr(max(0.0, seconds)),
        ]
        try:
            tokens = await self._script(keys=[f"{self._prefix}{{{key}}}"], args=args)
        except (redis.exceptions.RedisError, OSError) as exc:
            self.errors += 1
            raise RateLimiterUnavailable(f"Redis compile budget unavailable: {exc!r}") from exc
        text = tokens.decode() if isinstance(tokens, bytes) else str(tokens)
        return retry_after(float(text), seconds_per_minute)

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
