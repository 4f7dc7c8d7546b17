"""Who pays for a compile: the account a sandbox job runs for, asked before and charged after.

Sandbox.execute binds the caller's `CompileAccount` to the worker thread for the job; the
compile pool asks it before a module is compiled (not for cache hits) and charges it the
compile worker's CPU seconds afterwards. The sandbox knows nothing of where the budget
lives: the service implements the protocol over its rate-limit backend.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from wasmwiz.sandbox.models import SandboxError

_local = threading.local()


class CompileBudgetExceeded(SandboxError):
    """The account has spent its compile budget for now (a module compiled from the
    caches needs none): a compile is possible again in `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"compile budget spent; retry in {retry_after} s")
        self.retry_after = retry_after


class CompileAccount(Protocol):
    def check(self) -> None:
        """Raise CompileBudgetExceeded when the account may not compile now."""
        ...

    def charge(self, cpu_seconds: float) -> None:
        """Charge one compile's CPU seconds (its whole CPU limit if it overran or crashed)."""
        ...


def current_account() -> CompileAccount | None:
    account: CompileAccount | None = getattr(_local, "account", None)
    return account


@contextmanager
def bind_account(account: CompileAccount | None) -> Iterator[None]:
    previous = current_account()
    _local.account = account
    try:
        yield
    finally:
        _local.account = previous
