"""The checks behind /health and /health/ready: database, schema, temp dir, sandbox, limiter."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from wasmwiz.persistence import Database
from wasmwiz.persistence.migrate import UPGRADE_HINT
from wasmwiz.ratelimit import RateLimiter
from wasmwiz.sandbox import Sandbox
from wasmwiz.sandbox.workers import WorkerPool

logger = logging.getLogger(__name__)
_CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str | None = None


class HealthService:
    """The checks behind /health and /health/ready, run at most once per `cache_seconds`.

    Probes and unauthenticated callers share one result while it is fresh, and one run
    while it is in flight, so calling /health in a loop costs a dict lookup. The sandbox
    self-test runs on a thread of its own, never in the execution queue: a sandbox whose
    every slot holds a sleeping guest is busy, not broken, and must stay ready.
    """

    def __init__(
        self,
        database: Database,
        sandbox: Sandbox,
        temp_dir: Path,
        limiter: RateLimiter,
        *,
        schema_problem: Callable[[], Awaitable[str | None]] | None = None,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sandbox = sandbox
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._cached: tuple[float, list[CheckResult]] | None = None
        self._in_flight: asyncio.Task[list[CheckResult]] | None = None
        self._self_test_thread: WorkerPool | None = None
        self._checks: dict[str, Callable[[], Awaitable[None]]] = {
            "database": database.ping,
            "temp_dir": lambda: asyncio.to_thread(_check_writable, temp_dir),
            "sandbox": self._self_test,
            "rate_limiter": limiter.ping,
        }
        if schema_problem is not None:
            self._schema_problem = schema_problem
            self._checks["schema"] = self._check_schema

    async def run_checks(self) -> list[CheckResult]:
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < self._cache_seconds:
            return self._cached[1]
        if self._in_flight is None:
            self._in_flight = asyncio.create_task(self._run_all())
            self._in_flight.add_done_callback(self._forget_run)
        # Shielded: one caller that goes away does not cancel the others' answer.
        return await asyncio.shield(self._in_flight)

    def close(self) -> None:
        if self._self_test_thread is not None:
            self._self_test_thread.close()
            self._self_test_thread = None

    async def _run_all(self) -> list[CheckResult]:
        started = self._clock()
        results = list(await asyncio.gather(*(self._run(n, c) for n, c in self._checks.items())))
        self._cached = (started, results)
        return results

    def _forget_run(self, task: asyncio.Task[list[CheckResult]]) -> None:
        if self._in_flight is task:
            self._in_flight = None

    async def _self_test(self) -> None:
        if self._self_test_thread is None:
            # One big-stack thread of the sandbox's own kind (`Sandbox.run` runs inline
            # there): no queue, so a self-test still running when the next is due makes
            # that one fail, which is what a stuck sandbox should do.
            self._self_test_thread = WorkerPool(
                max_workers=1, max_queue=0, name="wasmwiz-self-test"
            )
        await self._self_test_thread.submit_async(self._sandbox.check)

    async def _check_schema(self) -> None:
        """A database behind this release serves nothing but 500s: not ready."""
        if await self._schema_problem() is not None:
            raise SchemaBehind(f"the database schema is behind this release: {UPGRADE_HINT}")

    async def _run(self, name: str, check: Callable[[], Awaitable[None]]) -> CheckResult:
        try:
            await asyncio.wait_for(check(), _CHECK_TIMEOUT_SECONDS)
        except SchemaBehind as exc:
            logger.error("health check %s failed: %s", name, exc)
            return CheckResult(name, False, str(exc))
        except Exception as exc:
            logger.warning("health check %s failed: %s", name, exc)
            # The detail names what failed without internal paths or stack traces.
            return CheckResult(name, False, f"{name} check failed: {type(exc).__name__}")
        return CheckResult(name, True)


class SchemaBehind(Exception):
    """The database's schema is older than this release's; the message says what to run."""


def _check_writable(directory: Path) -> None:
    """The temp dir exists and this process may create files in it. access(2), not a
    file: a check that unauthenticated callers can trigger must not write anything
    (access also answers EROFS on a read-only mount)."""
    if not (directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)):
        raise OSError(f"{directory.name} is not a writable directory")
