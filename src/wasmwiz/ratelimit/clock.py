"""Clocks the rate limiters read time from: the system's, and a manual one for tests."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A source of wall-clock time as UNIX seconds."""

    def now(self) -> float: ...


class SystemClock:
    """The host's wall clock.

    Wall time rather than a monotonic clock: the daily quota resets at 00:00 UTC, and
    replicas sharing one Redis must agree on what time it is.
    """

    def now(self) -> float:
        return time.time()


class ManualClock:
    """A clock that moves only when told to, so tests and benchmarks never sleep."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a ManualClock only moves forward; use set() to go back")
        self._now += seconds

    def set(self, now: float) -> None:
        self._now = float(now)
