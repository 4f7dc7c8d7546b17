"""Password hashing on its own few threads and a short queue: beyond them a 429, not a pile-up."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import TypeVar

from wasmwiz.auth import PasswordHasher
from wasmwiz.errors import LimitExceeded
from wasmwiz.problem_codes import ProblemCode

T = TypeVar("T")
_RETRY_AFTER_SECONDS = 2


class PasswordHashing:
    """argon2id hashes and checks, at most `threads` at once and `queue` more waiting.

    Each hash is costly by design (docs/security.md), so the pool is its own: asyncio's
    default pool (up to 32 threads) is shared with everything else, health checks included,
    and would let a sign-up flood take gigabytes. A call beyond the queue is refused with
    429 `try_later` instead of waiting behind it.
    """

    def __init__(self, hasher: PasswordHasher | None = None, *, threads: int, queue: int) -> None:
        if threads < 1 or queue < 0:
            raise ValueError("threads must be at least 1 and queue at least 0")
        self.threads = threads
        self._hasher = hasher or PasswordHasher()
        self._capacity = threads + queue
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wasmwiz-hash")
        self._admitted = 0  # touched on the event loop only
        self._lock = threading.Lock()
        self._running = 0
        self.peak_running = 0
        """The most hashes or checks that ever ran at once (a metric, and tests read it)."""
        self.refused = 0
        self.completed = 0
        """Hashes and checks done since start: a sign-in for an unknown email does one too."""
        self._decoy_hash: str | None = None
        # Set while a task holds a place, so the hashes it runs there take no other.
        self._holding = contextvars.ContextVar(f"hash_place_{id(self)}", default=False)

    @property
    def running(self) -> int:
        return self._running

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        return await self._run(self._hasher.verify, password_hash, password)

    async def prepare(self) -> None:
        """Make the decoy hash now (at start-up), so the first sign-in for an unknown email
        costs one check like any other, not a hash and a check."""
        if self._decoy_hash is None:
            self._decoy_hash = await self.hash("decoy password, never matched")

    async def verify_decoy(self, password: str) -> None:
        """Spend what checking a real password costs, for an account that does not exist,
        so response times do not tell which accounts exist."""
        await self.prepare()
        assert self._decoy_hash is not None
        await self.verify(self._decoy_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.needs_rehash(password_hash)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    @asynccontextmanager
    async def place(self) -> AsyncIterator[None]:
        """Hold a place in the pool for one flow's hashing, or 429 `try_later` at once.

        Taken before a flow touches the database, so a request the pool cannot serve is
        refused before it costs a connection; the flow's hashes then run in this place.
        """
        if self._holding.get():
            yield
            return
        self._admit()
        token = self._holding.set(True)
        try:
            yield
        finally:
            self._holding.reset(token)
            self._admitted -= 1

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        async with self.place():
            future = self._executor.submit(self._counted, function, *args)
            return await asyncio.wrap_future(future)

    def _admit(self) -> None:
        if self._admitted >= self._capacity:
            self.refused += 1
            raise LimitExceeded(
                "The server is busy checking other passwords; try again in a few seconds.",
                code=ProblemCode.TRY_LATER,
                retry_after=_RETRY_AFTER_SECONDS,
            )
        self._admitted += 1

    def _counted(self, function: Callable[..., T], *args: str) -> T:
        with self._lock:
            self._running += 1
            self.peak_running = max(self.peak_running, self._running)
        try:
            return function(*args)
        finally:
            with self._lock:
                self._running -= 1
                self.completed += 1
