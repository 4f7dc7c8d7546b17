"""Per-run state that host functions share with the runner, and bounds-checked guest memory."""

from __future__ import annotations

import ctypes
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from wasmwiz.sandbox.models import Outcome
from wasmwiz.sandbox.wasmtime_ffi import caller_memory

if TYPE_CHECKING:
    from wasmwiz.sandbox.wasi_files import FileTable

_local = threading.local()


class GuestFault(Exception):
    """A guest pointer or length points outside its linear memory (EFAULT for the guest)."""


class StopGuest(Exception):
    """Raised inside a host function to end the run; never leaves the trampoline."""


class RunState:
    """What one run's host functions record: captured output and why the guest was stopped.

    It lives in a thread-local for the length of one run: host functions run on the
    thread that called into wasm, so each run finds its own state without any lookup.
    """

    def __init__(
        self,
        *,
        max_output_bytes: int,
        timeout_seconds: float,
        stdin_size: int,
        deterministic: bool = False,
        seed: int = 0,
    ) -> None:
        self.max_output_bytes = max_output_bytes
        self.timeout_seconds = timeout_seconds
        self.stdin_size = stdin_size
        # Deterministic runs: clocks read `virtual_ns`, which only sleeping advances, and
        # random_get draws from a stream keyed by the seed and a per-run call counter.
        self.deterministic = deterministic
        self.seed = seed
        self.virtual_ns = 0
        self.random_calls = 0
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stdout_truncated = False
        self.stderr_truncated = False
        self.stop_outcome: Outcome | None = None
        self.stop_reason: str | None = None
        self.host_error: BaseException | None = None
        self.files: FileTable | None = None  # the run's directory and descriptors, if any
        # The instance's exported memory (a C API handle), found by the first host call.
        self.memory: Any = None
        # Host work charged to this run (CPU time in host functions, which holds the
        # GIL) and host calls made; see wasi_host's host-time share.
        self.host_ns = 0
        self.host_calls = 0
        self.started_ns = time.monotonic_ns()
        self.deadline = time.monotonic() + timeout_seconds

    def start_clock(self) -> None:
        self.started_ns = time.monotonic_ns()
        self.deadline = time.monotonic() + self.timeout_seconds

    def elapsed_ns(self) -> int:
        return time.monotonic_ns() - self.started_ns

    def stop(self, outcome: Outcome, reason: str) -> None:
        self.stop_outcome = outcome
        self.stop_reason = reason
        raise StopGuest(reason)

    def output_room(self, fd: int) -> int:
        return self.max_output_bytes - len(self.stdout if fd == 1 else self.stderr)

    def capture(self, fd: int, memory: GuestMemory, ptr: int, length: int) -> None:
        """Append guest bytes to stdout (fd 1) or stderr (fd 2), keeping exactly the cap."""
        buffer = self.stdout if fd == 1 else self.stderr
        room = self.output_room(fd)
        if length <= room:
            buffer += memory.read(ptr, length)
            return
        buffer += memory.read(ptr, room)
        name = "stdout" if fd == 1 else "stderr"
        if fd == 1:
            self.stdout_truncated = True
        else:
            self.stderr_truncated = True
        self.stop(
            Outcome.OUTPUT_LIMIT,
            f"{name} exceeded the output limit of {self.max_output_bytes} bytes",
        )


def current_run() -> RunState | None:
    state: RunState | None = getattr(_local, "run", None)
    return state


_live = [0]  # runs bound right now, in every thread
_live_lock = threading.Lock()


def live_runs() -> int:
    """How many runs are in progress in this process (read without the lock: a hint)."""
    return _live[0]


@contextmanager
def bind_run(state: RunState) -> Iterator[RunState]:
    """Make `state` the current thread's run for host functions called inside the block."""
    previous = current_run()
    _local.run = state
    with _live_lock:
        _live[0] += 1
    try:
        yield state
    finally:
        with _live_lock:
            _live[0] -= 1
        _local.run = previous


class GuestMemory:
    """A view of the caller's exported memory, valid only during one host call."""

    __slots__ = ("_base", "_size")

    def __init__(self, base: int, size: int) -> None:
        self._base = base
        self._size = size

    @classmethod
    def from_caller(cls, caller_ptr: Any, state: RunState) -> GuestMemory:
        """The calling instance's exported memory (no memory: every pointer faults), where
        it is now: it moves and grows between calls. Which memory it is, the run keeps."""
        base, size, state.memory = caller_memory(caller_ptr, state.memory)
        return cls(base, size)

    def require(self, ptr: int, length: int) -> None:
        if ptr < 0 or length < 0 or ptr + length > self._size:
            raise GuestFault

    def require_spans(self, spans: Iterable[tuple[int, int]]) -> None:
        """As require for each (ptr, length), for unsigned values such as unpacked iovecs."""
        size = self._size
        for ptr, length in spans:
            if ptr + length > size:
                raise GuestFault

    def read(self, ptr: int, length: int) -> bytes:
        self.require(ptr, length)
        return ctypes.string_at(self._base + ptr, length) if length else b""

    def write(self, ptr: int, data: bytes) -> None:
        self.require(ptr, len(data))
        if data:
            ctypes.memmove(self._base + ptr, data, len(data))
