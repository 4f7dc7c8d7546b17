"""One budget for the request bytes the process holds at once, and giving them back after.

Every request body is charged here before it is read (its declared length, or each chunk
of a chunked body as it arrives) and credited when the request has been answered. A
request that does not fit waits, in arrival order, for at most `wait` seconds and is then
refused with 503 `server_busy`: a burst of uploads costs at most the budget, whatever
the number of connections.

glibc keeps freed memory: after a burst of large bodies the heap stays as large as its
peak (its mmap threshold rises with the first large free, so later bodies come from the
heap). When the budget falls back to nothing after large requests, `malloc_trim(0)` hands
the free pages back to the system.
"""

from __future__ import annotations

import asyncio
import collections
import ctypes
import logging
from collections.abc import Callable

from wasmwiz.errors import ServiceUnavailable
from wasmwiz.problem_codes import ProblemCode

MiB = 1024 * 1024
# Trim only after this much has come and gone: a trim walks the whole heap.
TRIM_AFTER_BYTES = 16 * MiB
# Let the request's last references (its task, its frames) go before trimming.
TRIM_DELAY_SECONDS = 0.5
_RETRY_AFTER = 1

logger = logging.getLogger(__name__)


def trim_malloc() -> bool:
    """Return free heap pages to the system; False where there is no glibc."""
    try:
        malloc_trim = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return False
    malloc_trim.argtypes = (ctypes.c_size_t,)
    malloc_trim.restype = ctypes.c_int
    malloc_trim(0)
    return True


class MemoryBudget:
    """Bytes reserved by requests being read or served, at most `limit` at once.

    A single request larger than the whole budget is let in alone, so a budget below the
    body limit slows big uploads down rather than refusing them all.
    """

    def __init__(
        self, limit: int, *, wait: float, trim: Callable[[], object] | None = trim_malloc
    ) -> None:
        self.limit = limit
        self.wait = wait
        self.held = 0
        self.refused = 0
        self._waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()
        self._trim = trim
        self._since_trim = 0
        self._trim_scheduled = False

    def _fits(self, size: int) -> bool:
        return self.held == 0 or self.held + size <= self.limit

    async def acquire(self, size: int) -> None:
        """Reserve `size` bytes, waiting in turn; ServiceUnavailable if the wait runs out."""
        if size <= 0:
            return
        if not self._waiters and self._fits(size):
            self.held += size
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, granted)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(self.wait):
                await asyncio.shield(granted)
        except TimeoutError:
            if granted.done():  # granted as the wait ran out: it is ours to give back
                self.release(size)
            else:
                self._waiters.remove(entry)
                granted.cancel()
                self._wake()  # a smaller request behind this one may fit now
            self.refused += 1
            raise ServiceUnavailable(
                "The server is holding as many request bodies as it allows; retry shortly.",
                code=ProblemCode.SERVER_BUSY,
                retry_after=_RETRY_AFTER,
            ) from None

    def release(self, size: int) -> None:
        if size <= 0:
            return
        self.held -= size
        self._since_trim += size
        self._wake()
        if self.held == 0 and self._since_trim >= TRIM_AFTER_BYTES:
            self._schedule_trim()

    def _wake(self) -> None:
        while self._waiters and self._fits(self._waiters[0][0]):
            size, granted = self._waiters.popleft()
            self.held += size
            granted.set_result(None)

    def _schedule_trim(self) -> None:
        if self._trim is None or self._trim_scheduled:
            return
        self._trim_scheduled = True
        loop = asyncio.get_running_loop()
        loop.call_later(TRIM_DELAY_SECONDS, self._start_trim, loop)

    def _start_trim(self, loop: asyncio.AbstractEventLoop) -> None:
        self._trim_scheduled = False
        if self.held != 0 or self._trim is None:
            return  # another burst began; the trim waits for its end
        self._since_trim = 0
        # In a thread: a trim of a large heap takes milliseconds the event loop should not.
        loop.run_in_executor(None, self._trim)
