"""Each account's compile budget, asked and charged from the sandbox's worker threads.

The sandbox asks before compiling a module no cache holds and charges the compile
worker's CPU seconds afterwards, on its own worker thread; the budget lives in the
rate-limit backend (Redis for several replicas), reached through the event loop the
request runs on. If the backend cannot answer, compiles are allowed (and logged): the
compile workers' own limits still bound every compile.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from wasmwiz.ratelimit import RateLimiterUnavailable
from wasmwiz.ratelimit.compile_budget import CompileBudget
from wasmwiz.sandbox.compile_account import CompileAccount, CompileBudgetExceeded
from wasmwiz.services.principals import Principal

logger = logging.getLogger(__name__)

# A worker thread waits this long for the backend before letting the compile through.
_BACKEND_WAIT_SECONDS = 2.0


class CompileBudgets:
    def __init__(self, budget: CompileBudget) -> None:
        self._budget = budget

    def account_for(self, principal: Principal) -> CompileAccount:
        """The principal's account, bound to the running event loop."""
        return _LoopAccount(
            self._budget,
            principal.rate_limit_key,
            principal.tier.compile_seconds_per_minute,
            asyncio.get_running_loop(),
        )


class _LoopAccount(CompileAccount):
    def __init__(
        self, budget: CompileBudget, key: str, per_minute: int, loop: asyncio.AbstractEventLoop
    ) -> None:
        self._budget = budget
        self._key = key
        self._per_minute = per_minute
        self._loop = loop

    def check(self) -> None:
        retry_after = self._ask(self._budget.peek(self._key, self._per_minute))
        if retry_after is not None:
            raise CompileBudgetExceeded(retry_after)

    def charge(self, cpu_seconds: float) -> None:
        self._ask(self._budget.charge(self._key, cpu_seconds, self._per_minute))

    def _ask(self, call: Coroutine[Any, Any, int | None]) -> int | None:
        try:
            future = asyncio.run_coroutine_threadsafe(call, self._loop)
        except RuntimeError:  # the loop has closed: the server is stopping
            call.close()
            return None
        try:
            return future.result(timeout=_BACKEND_WAIT_SECONDS)
        except (RateLimiterUnavailable, TimeoutError):
            future.cancel()
            logger.error("compile budget unavailable; allowing the compile")
            return None
