"""Health checks: the database, the temp dir, the sandbox and the rate limiter."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from wasmwiz.persistence import Database
from wasmwiz.ratelimit import RateLimiter
from wasmwiz.sandbox import Sandbox

logger = logging.getLogger(__name__)
_CHECK_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str | None = None


class HealthService:
    def __init__(
        self, database: Database, sandbox: Sandbox, temp_dir: Path, limiter: RateLimiter
    ) -> None:
        self._checks: dict[str, Callable[[], Awaitable[None]]] = {
            "database": database.ping,
            "temp_dir": lambda: asyncio.to_thread(_check_writable, temp_dir),
            "sandbox": lambda: asyncio.to_thread(sandbox.check),
            "rate_limiter": limiter.ping,
        }

    async def run_checks(self) -> list[CheckResult]:
        return list(await asyncio.gather(*(self._run(n, c) for n, c in self._checks.items())))

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
