"""The sandbox's own worker threads: big native stacks, bounded concurrency and queue."""

from __future__ import annotations

import queue
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

_Job = tuple[Callable[[], Any], "Future[Any]"]
_local = threading.local()


def on_worker_thread() -> bool:
    """Whether the calling thread is one of a WorkerPool's (with its big native stack)."""
    return bool(getattr(_local, "is_worker", False))


class WorkerPool:
    """`max_workers` threads started up front; at most `max_queue` jobs wait for one."""

    def __init__(self, *, max_workers: int, max_queue: int, name: str = "wasmwiz-sandbox") -> None:
        if max_workers < 1 or max_queue < 0:
            raise ValueError("max_workers must be >= 1 and max_queue >= 0")
        self._capacity = max_workers + max_queue
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
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
    def in_flight(self) -> int:
        return self._running

    @property
    def queued(self) -> int:
        with self._lock:
            return self._pending - self._running

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Queue `fn`; raise SandboxBusy at once when every worker and queue slot is taken."""
        future: Future[T] = Future()
        with self._lock:
            if self._closed:
                raise SandboxError("the sandbox is closed")
            if self._pending >= self._capacity:
                raise SandboxBusy("too many runs in progress; try again later")
            self._pending += 1
        self._jobs.put((fn, future))
        return future

    def _work(self) -> None:
        _local.is_worker = True
        while (job := self._jobs.get()) is not None:
            fn, future = job
            # A job whose caller went away while it was queued is skipped.
            if not future.set_running_or_notify_cancel():
                self._finish(ran=False)
                continue
            with self._lock:
                self._running += 1
            try:
                result = fn()
            except BaseException as exc:
                # Counted as finished before the caller can see the outcome, so stats()
                # read right after an awaited run never shows it still in flight.
                self._finish(ran=True)
                future.set_exception(exc)
            else:
                self._finish(ran=True)
                future.set_result(result)

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
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()
