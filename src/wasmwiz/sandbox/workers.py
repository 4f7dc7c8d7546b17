"""The sandbox's own worker threads: big native stacks, bounded concurrency and queue.

Jobs wait in a deque; each one is announced by one byte written to a pipe that the idle
workers block reading. A pipe, not a lock or condition (queue.SimpleQueue): Linux wakes a
pipe's reader with its synchronous-wakeup hint, so the scheduler tends to run the worker
on the core the event loop is about to leave idle, with that core's caches warm, instead
of waking the other core. bench/run.py's hop figures show the difference.

Waiting jobs are kept per fairness key (the account a run is for) and served round-robin
across keys, FIFO within one: a burst from one account waits behind itself, not in front
of everyone else. The byte announces "a job is ready"; which job a worker takes is chosen
under the lock when it wakes. `fair=False` keeps one queue in arrival order (the previous
behaviour, kept for side-by-side benchmarks).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from wasmwiz.sandbox.models import SandboxBusy, SandboxError

T = TypeVar("T")

# Deep guest recursion on a thread with a small native stack crashes the whole process
# (SIGSEGV) instead of trapping; 8 MiB is far above wasmtime's 1 MiB wasm stack.
WORKER_STACK_BYTES = 8 * 1024 * 1024

# threading.stack_size() is process-wide: serialize our use of it.
_stack_size_lock = threading.Lock()

# A job's byte stays in the pipe until a worker takes the job, and submit() must never
# block writing it: with every worker busy the pipe holds up to max_queue bytes, plus one
# per worker when close() asks them to stop. A pipe normally holds 64 KiB, but only one
# page (4 KiB) once the user's pipes pass the kernel's soft limit
# (/proc/sys/fs/pipe-user-pages-soft): that page is the bound.
MAX_CAPACITY = 4096

_Job = tuple[Callable[[], Any], "Future[Any] | asyncio.Future[Any]"]
_local = threading.local()


def on_worker_thread() -> bool:
    """Whether the calling thread is one of a WorkerPool's (with its big native stack)."""
    return bool(getattr(_local, "is_worker", False))


def current_key() -> str:
    """The fairness key of the job running on this thread ("" outside a keyed job)."""
    return str(getattr(_local, "key", ""))


class WorkerPool:
    """`max_workers` threads started up front; at most `max_queue` jobs wait for one."""

    def __init__(
        self,
        *,
        max_workers: int,
        max_queue: int,
        name: str = "wasmwiz-sandbox",
        fair: bool = True,
    ) -> None:
        if max_workers < 1 or max_queue < 0 or max_workers + max_queue > MAX_CAPACITY:
            raise ValueError(
                f"max_workers must be >= 1, max_queue >= 0 and together at most {MAX_CAPACITY}"
            )
        self._capacity = max_workers + max_queue
        self._fair = fair
        # Keys with waiting jobs, in turn order: the first key's oldest job goes next,
        # and a key that still has jobs then moves to the back.
        self._queues: dict[str, collections.deque[_Job]] = {}
        self._wake_read, self._wake_write = os.pipe2(os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._pending = 0  # submitted and not finished
        self._running = 0
        self._closed = False
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(max_workers)
        ]
        # Started eagerly, while we hold the stack size, rather than lazily on some
        # request thread where another library might be changing it.
        with _stack_size_lock:
            previous = threading.stack_size(WORKER_STACK_BYTES)
            try:
                for thread in self._threads:
                    thread.start()
            finally:
                threading.stack_size(previous)

    @property
    def max_workers(self) -> int:
        return len(self._threads)

    @property
    def in_flight(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        with self._lock:
            return self._pending - self._running

    def submit(self, fn: Callable[[], T], key: str = "") -> Future[T]:
        """Queue `fn`; raise SandboxBusy at once when every worker and queue slot is taken.

        `key` is the fairness key: waiting jobs are served round-robin across keys.
        """
        future: Future[T] = Future()
        self._enqueue((fn, future), key)
        return future

    def submit_async(self, fn: Callable[[], T], key: str = "") -> asyncio.Future[T]:
        """As submit, for the running event loop: the job settles the returned future
        through the loop itself, with no thread-safe future in between. Cancelling it
        skips the job if it has not started."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._enqueue((fn, future), key)
        return future

    def _enqueue(self, job: _Job, key: str) -> None:
        if not self._fair:
            key = ""
        # The job runs in a copy of the submitter's context (its contextvars: the trace,
        # so a log line written on the worker names the request's trace, as one written
        # on the event loop does).
        fn, future = job
        job = (functools.partial(contextvars.copy_context().run, fn), future)
        # Checked, queued and announced in one step, as ThreadPoolExecutor.submit does:
        # a job can never be queued behind close()'s stop bytes, where no worker would
        # ever take it.
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            if self._pending >= self._capacity:
                raise SandboxBusy("too many runs in progress; try again later")
            queue = self._queues.get(key)
            if queue is None:
                self._queues[key] = queue = collections.deque()
            queue.append(job)
            self._pending += 1
            os.write(self._wake_write, b"j")

    def _next(self) -> tuple[_Job, str] | None:
        """The next job in turn, or None when the byte read was one of close()'s."""
        with self._lock:
            for key, queue in self._queues.items():
                job = queue.popleft()
                del self._queues[key]
                if queue:
                    self._queues[key] = queue  # to the back of the turn order
                return job, key
            return None

    def _work(self) -> None:
        _local.is_worker = True
        # One byte per job, written after the job was queued, and one per worker from
        # close(), written after every job: a byte finds no job only once closing.
        while os.read(self._wake_read, 1) and (taken := self._next()) is not None:
            (fn, future), key = taken
            # A job whose caller went away while it was queued is skipped.
            if not _start(future):
                self._finish(ran=False)
                continue
            with self._lock:
                self._running += 1
            _local.key = key
            try:
                result = fn()
            except BaseException as exc:
                # Counted as finished before the caller can see the outcome, so stats()
                # read right after an awaited run never shows it still in flight.
                self._finish(ran=True)
                _settle(future, None, exc)
            else:
                self._finish(ran=True)
                _settle(future, result, None)
            finally:
                _local.key = ""

    def _finish(self, *, ran: bool) -> None:
        with self._lock:
            self._pending -= 1
            if ran:
                self._running -= 1

    def close(self) -> None:
        """Refuse new jobs, let queued and running ones finish, and join the threads."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _ in self._threads:
                os.write(self._wake_write, b"s")
        for thread in self._threads:
            thread.join()
        os.close(self._wake_read)
        os.close(self._wake_write)


def _start(future: Future[Any] | asyncio.Future[Any]) -> bool:
    if isinstance(future, asyncio.Future):
        # Read from this thread without the loop: at worst a cancellation that is just
        # happening is missed, and the job runs for no one, as one already running does.
        return not future.cancelled()
    return future.set_running_or_notify_cancel()


def _settle(
    future: Future[Any] | asyncio.Future[Any], result: Any, error: BaseException | None
) -> None:
    if isinstance(future, asyncio.Future):
        with contextlib.suppress(RuntimeError):  # the loop is closed: no one is waiting
            future.get_loop().call_soon_threadsafe(_settle_on_loop, future, result, error)
    elif error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _settle_on_loop(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
