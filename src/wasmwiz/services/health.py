"""Liveness, readiness and the process lifecycle (starting, ready, draining)."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from wasmwiz.persistence import Database
from wasmwiz.ratelimit import RateLimiter
from wasmwiz.sandbox import Sandbox

logger = logging.getLogger(__name__)
_CHECK_TIMEOUT_SECONDS = 2.0


class Phase(StrEnum):
    STARTING = "starting"
    READY = "ready"
    DRAINING = "draining"


class Lifecycle:
    """Where the process is in its life, and how many requests it is serving.

    Built before the app starts so the HTTP layer can refuse work while starting or
    draining; the lifespan marks it ready, and a SIGTERM handler marks it draining.
    """

    def __init__(self) -> None:
        self.phase = Phase.STARTING
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def mark_ready(self) -> None:
        if self.phase is Phase.STARTING:
            self.phase = Phase.READY

    def begin_draining(self) -> None:
        if self.phase is not Phase.DRAINING:
            logger.info("draining: %d request(s) in flight", self._in_flight)
        self.phase = Phase.DRAINING

    def request_started(self) -> None:
        self._in_flight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self._in_flight -= 1
        if self._in_flight == 0:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Wait until no request is in flight (bound it with `asyncio.timeout`)."""
        await self._idle.wait()


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str | None = None


class HealthService:
    def __init__(
        self,
        database: Database,
        sandbox: Sandbox,
        temp_dir: Path,
        limiter: RateLimiter,
        lifecycle: Lifecycle | None = None,
    ) -> None:
        self.lifecycle = lifecycle or Lifecycle()
        self._checks: dict[str, Callable[[], Awaitable[None]]] = {
            "database": database.ping,
            "temp_dir": lambda: asyncio.to_thread(_check_writable, temp_dir),
            "sandbox": lambda: asyncio.to_thread(sandbox.check),
            "rate_limiter": limiter.ping,
        }

    async def run_checks(self) -> list[CheckResult]:
        return list(await asyncio.gather(*(self._run(n, c) for n, c in self._checks.items())))

    async def readiness(self) -> list[CheckResult]:
        """Every check, plus the lifecycle: a starting or draining process is not ready."""
        phase = self.lifecycle.phase
        lifecycle = CheckResult(
            "lifecycle", phase is Phase.READY, None if phase is Phase.READY else phase.value
        )
        if phase is not Phase.READY:
            return [lifecycle]
        return [lifecycle, *await self.run_checks()]

    async def _run(self, name: str, check: Callable[[], Awaitable[None]]) -> CheckResult:
        try:
            await asyncio.wait_for(check(), _CHECK_TIMEOUT_SECONDS)
        except Exception as exc:
            logger.warning("health check %s failed: %s", name, exc)
            # The detail names what failed without internal paths or stack traces.
            return CheckResult(name, False, f"{name} check failed: {type(exc).__name__}")
        return CheckResult(name, True)


def _check_writable(directory: Path) -> None:
    with tempfile.NamedTemporaryFile(dir=directory):
        pass
