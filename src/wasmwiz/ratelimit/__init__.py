"""Rate limits per account and per key: token buckets, daily quotas, concurrency slots."""

from wasmwiz.ratelimit.clock import Clock, ManualClock, SystemClock
from wasmwiz.ratelimit.memory import MemoryRateLimiter
from wasmwiz.ratelimit.model import (
    AdmitOutcome,
    Budget,
    Decision,
    Quota,
    RateLimiter,
    RateLimiterUnavailable,
    Refusal,
)
from wasmwiz.ratelimit.redis_backend import RedisRateLimiter

__all__ = [
    "AdmitOutcome",
    "Budget",
    "Clock",
    "Decision",
    "ManualClock",
    "MemoryRateLimiter",
    "Quota",
    "RateLimiter",
    "RateLimiterUnavailable",
    "RedisRateLimiter",
    "Refusal",
    "SystemClock",
]
