"""Per-key rate limits: a per-minute token bucket, a daily quota and concurrency slots."""

from wasmwiz.ratelimit.clock import Clock, ManualClock, SystemClock
from wasmwiz.ratelimit.memory import MemoryRateLimiter
from wasmwiz.ratelimit.model import (
    Admittance,
    Decision,
    Quota,
    RateLimiter,
    RateLimiterUnavailable,
    Refusal,
)
from wasmwiz.ratelimit.redis_backend import RedisRateLimiter

__all__ = [
    "Admittance",
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
