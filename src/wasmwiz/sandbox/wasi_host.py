"""Python replacements for the WASI calls the sandbox must control: output, sleep, time, random.

The functions are installed with wasmtime's *unchecked* C callback rather than
`Linker.define_func`: wasmtime-py's own trampoline parks a host function's exception in
a process-global and re-raises it in whichever thread looks next, so under concurrency a
run could receive another run's exception. Here a host function never raises into
wasmtime: it returns an errno, or a trap built directly in C, and records in its run's
`RunState` why it stopped the guest. The runner classifies from that state first.

Host work is charged to the run. Every call's cost is bounded (IOV_MAX iovecs,
MAX_SUBSCRIPTIONS subscriptions, random_get in chunks), and the CPU time a run's host
calls take on their thread (time that holds the GIL; sleeping takes none), plus a fixed
charge per call for the entry and exit we cannot time, is its host time. All runs
together may spend HOST_SHARE of wall time in host calls, and HOST_BURST_SECONDS of
burst, both split evenly between the runs in progress: past its part of the burst, a
run's host time may be at most its part of its wall time. A call that goes beyond it
sleeps (without the GIL) until the run is back within its part, and a run whose part
would only come back after its deadline ends as a timeout. So a guest looping on host
calls turns its own wall time into waiting, not the event loop's and other runs' time
into GIL waits; a guest alone can still spend half of its time in host calls (printing
line by line, reading the clock), and its burst covers several thousand calls.
"""

from __future__ import annotations

import hashlib
import os
import struct
import time
from collections.abc import Callable, Iterator
from typing import Any

import wasmtime

from wasmwiz.sandbox.guest import (
    GuestFault,
    GuestMemory,
    RunState,
    StopGuest,
    current_run,
    live_runs,
)
from wasmwiz.sandbox.models import Outcome
from wasmwiz.sandbox.wasmtime_ffi import (
    define_unchecked,
    new_trap,
    unchecked_callback,
)

WASI = "wasi_snapshot_preview1"

ERRNO_SUCCESS = 0
ERRNO_BADF = 8
ERRNO_FAULT = 21
ERRNO_INVAL = 28

IOV_MAX = 1024  # POSIX writev's limit; bounds the Python work a single call can demand
MAX_SUBSCRIPTIONS = 1024
HOST_SHARE = 0.5  # of wall time, for all runs' host calls together
HOST_BURST_SECONDS = 0.2
# A fixed charge per call for ctypes' callback entry and exit, which the trampoline
# cannot time: a generous guess, of the order of a whole cheap host call, so a storm of
# the cheapest calls is not nearly free.
HOST_CALL_OVERHEAD_NS = 5_000
RANDOM_CHUNK = 1024 * 1024  # random_get fills big buffers in pieces, checking the deadline
CLOCK_RESOLUTION_NS = 1000
# Where a deterministic run's realtime clock starts: 2024-01-01T00:00:00Z.
VIRTUAL_EPOCH_NS = 1_704_067_200 * 1_000_000_000

CLOCK_REALTIME = 0
CLOCK_MONOTONIC = 1
CLOCK_PROCESS_CPUTIME = 2
CLOCK_THREAD_CPUTIME = 3
SUBCLOCKFLAGS_ABSTIME = 1

EVENTTYPE_CLOCK = 0
EVENTTYPE_FD_READ = 1
EVENTTYPE_FD_WRITE = 2

# userdata, tag, then the union: a clock subscription's clock id, timeout, precision and
# flags, or an fd subscription's fd (where the clock id would be). One unpack per call.
_SUBSCRIPTION = struct.Struct("<QB7xI4xQQH6x")
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, errno, type, nbytes, flags
_IOVEC = struct.Struct("<II")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF

HostImpl = Callable[[RunState, GuestMemory, list[int]], int]


def install(linker: wasmtime.Linker) -> list[Any]:
    """Shadow fd_write, poll_oneoff, clock_time_get, clock_res_get and random_get.

    Returns the C callback objects; the caller must keep them alive as long as the linker.
    """
    i32, i64 = wasmtime.ValType.i32(), wasmtime.ValType.i64()
    definitions: list[tuple[str, list[Any], HostImpl]] = [
        ("fd_write", [i32, i32, i32, i32], fd_write),
        ("poll_oneoff", [i32, i32, i32, i32], poll_oneoff),
        ("clock_time_get", [i32, i64, i32], clock_time_get),
        ("clock_res_get", [i32, i32], clock_res_get),
        ("random_get", [i32, i32], random_get),
    ]
    keep_alive: list[Any] = []
    for name, params, impl in definitions:
        func_type = wasmtime.FuncType(params, [i32])
        widths = [64 if p == i64 else 32 for p in params]
        callback = trampoline(impl, widths)
        define(linker, name, func_type, callback)
        keep_alive += [callback, func_type]
    return keep_alive


def define(linker: wasmtime.Linker, name: str, func_type: wasmtime.FuncType, callback: Any) -> None:
    """Define (or shadow) WASI's `name` in `linker` as an unchecked callback."""
    define_unchecked(linker, WASI, name, func_type, callback)


def _trap(message: str) -> int:
    return new_trap(message)


def trampoline(impl: HostImpl, widths: list[int]) -> Any:
    """The C callback that calls `impl` with the current run's state, its memory and the
    call's arguments (unsigned, `widths` giving each one's bits), charging its host time."""

    def call(_env: Any, caller_ptr: Any, raw: Any, _count: int) -> int:
        state = current_run()
        if state is None:
            return _trap("WASI call outside of a sandbox run")
        started_ns = time.thread_time_ns()
        try:
            args = [raw[i].i64 & _MASK64 if w == 64 else raw[i].i32 & _MASK32
                    for i, w in enumerate(widths)]  # fmt: skip
            memory = GuestMemory.from_caller(caller_ptr, state)
            raw[0].i32 = impl(state, memory, args)
            _charge(state, time.thread_time_ns() - started_ns)
        except StopGuest as stop:
            return _trap(str(stop))
        except BaseException as exc:  # a host bug: report it as a host fault, never as a guest trap
            state.host_error = exc
            return _trap("host function failed")
        return 0

    return unchecked_callback(call)


def _charge(state: RunState, spent_ns: int) -> None:
    """Add one call's host time; beyond the run's share, sleep it off or end the run."""
    state.host_calls += 1
    state.host_ns += spent_ns + HOST_CALL_OVERHEAD_NS
    # The burst is split like the share: runs starting together (a storm restarting)
    # cannot each take a whole burst of GIL time at once.
    runs = max(1, live_runs())
    over_ns = state.host_ns - HOST_BURST_SECONDS * 1e9 / runs
    elapsed_ns = state.elapsed_ns()
    share = HOST_SHARE / runs
    if over_ns <= share * elapsed_ns:
        return
    # Back within its part once the run's wall time reaches over_ns / share.
    pause = (over_ns / share - elapsed_ns) / 1e9
    now = time.monotonic()
    if now + pause > state.deadline:
        time.sleep(max(0.0, state.deadline - now))
        state.stop(Outcome.TIMEOUT, "host calls used up the run's time")
    time.sleep(pause)


def fd_write(state: RunState, memory: GuestMemory, args: list[int]) -> int:
    fd, iovs, count, nwritten_ptr = args
    if fd not in (1, 2):
        return ERRNO_BADF
    if count > IOV_MAX:
        return ERRNO_INVAL
    try:
        raw = memory.read(iovs, count * _IOVEC.size)
        vectors = list(_IOVEC.iter_unpack(raw))
        memory.require_spans(vectors)
        memory.require(nwritten_ptr, _U32.size)
    except GuestFault:
        return ERRNO_FAULT
    written = 0
    for ptr, length in vectors:
        if length:
            state.capture(fd, memory, ptr, length)
            written += length
    memory.write(nwritten_ptr, _U32.pack(written & _MASK32))
    return ERRNO_SUCCESS


def clock_time_get(state: RunState, memory: GuestMemory, args: list[int]) -> int:
    clock_id, _precision, time_ptr = args
    now = _clock_now(state, clock_id)
    if now is None:
        return ERRNO_INVAL
    try:
        memory.write(time_ptr, _U64.pack(now & _MASK64))
    except GuestFault:
        return ERRNO_FAULT
    return ERRNO_SUCCESS


def clock_res_get(state: RunState, memory: GuestMemory, args: list[int]) -> int:
    clock_id, resolution_ptr = args
    if _clock_now(state, clock_id) is None:
        return ERRNO_INVAL
    try:
        memory.write(resolution_ptr, _U64.pack(CLOCK_RESOLUTION_NS))
    except GuestFault:
        return ERRNO_FAULT
    return ERRNO_SUCCESS


def realtime_ns(state: RunState) -> int:
    """The run's realtime clock: the host's, or a deterministic run's virtual one."""
    now = _clock_now(state, CLOCK_REALTIME)
    assert now is not None
    return now


def _clock_now(state: RunState, clock_id: int) -> int | None:
    if clock_id == CLOCK_REALTIME:
        return VIRTUAL_EPOCH_NS + state.virtual_ns if state.deterministic else time.time_ns()
    if clock_id in (CLOCK_MONOTONIC, CLOCK_PROCESS_CPUTIME, CLOCK_THREAD_CPUTIME):
        # Counted from the run's start: it hides the host's uptime, and a single-threaded
        # guest's CPU time is close to its wall time.
        return state.virtual_ns if state.deterministic else state.elapsed_ns()
    return None


def random_get(state: RunState, memory: GuestMemory, args: list[int]) -> int:
    buf, length = args
    try:
        memory.require(buf, length)
    except GuestFault:
        return ERRNO_FAULT
    state.random_calls += 1
    key = state.seed.to_bytes(8, "little") + state.random_calls.to_bytes(8, "little")
    for index, offset in enumerate(range(0, length, RANDOM_CHUNK)):
        if time.monotonic() > state.deadline:
            state.stop(Outcome.TIMEOUT, "random_get ran past the deadline")
        size = min(RANDOM_CHUNK, length - offset)
        if state.deterministic:
            chunk = hashlib.shake_256(key + index.to_bytes(8, "little")).digest(size)
        else:
            chunk = os.urandom(size)
        memory.write(buf + offset, chunk)
    return ERRNO_SUCCESS


FdEvent = Callable[[RunState, int, int, int], bytes]


def poll_oneoff(
    state: RunState, memory: GuestMemory, args: list[int], fd_event: FdEvent | None = None
) -> int:
    """Sleep for clock subscriptions, never past the deadline; fd subscriptions are
    answered at once by `fd_event` (stdio's readiness, by default)."""
    fd_event = fd_event or _fd_event
    in_ptr, out_ptr, count, nevents_ptr = args
    if count == 0 or count > MAX_SUBSCRIPTIONS:
        return ERRNO_INVAL
    try:
        raw = memory.read(in_ptr, count * _SUBSCRIPTION.size)
        memory.require(out_ptr, count * _EVENT.size)
        memory.require(nevents_ptr, _U32.size)
    except GuestFault:
        return ERRNO_FAULT
    events: list[bytes] = []
    timers: list[tuple[float, int]] = []  # (delay in seconds, userdata)
    for userdata, tag, clock_id_or_fd, timeout, _precision, flags in _SUBSCRIPTION.iter_unpack(raw):
        if tag == EVENTTYPE_CLOCK:
            delay = _delay_seconds(state, clock_id_or_fd, timeout, flags)
            if delay is None:
                events.append(_EVENT.pack(userdata, ERRNO_INVAL, tag, 0, 0))
            else:
                timers.append((delay, userdata))
        elif tag in (EVENTTYPE_FD_READ, EVENTTYPE_FD_WRITE):
            events.append(fd_event(state, userdata, tag, clock_id_or_fd))
        else:
            return ERRNO_INVAL
    if not events:
        sleep = _virtual_sleep if state.deterministic else _sleep
        events = sleep(state, timers)
    memory.write(out_ptr, b"".join(events))
    memory.write(nevents_ptr, _U32.pack(len(events)))
    return ERRNO_SUCCESS


def _delay_seconds(state: RunState, clock_id: int, timeout: int, flags: int) -> float | None:
    now = _clock_now(state, clock_id)
    if now is None:
        return None
    if flags & SUBCLOCKFLAGS_ABSTIME:
        return max(0, timeout - now) / 1e9
    return timeout / 1e9


def event(userdata: int, errno: int, tag: int, nbytes: int) -> bytes:
    """One poll_oneoff event record."""
    return _EVENT.pack(userdata, errno, tag, nbytes, 0)


def _fd_event(state: RunState, userdata: int, tag: int, fd: int) -> bytes:
    if tag == EVENTTYPE_FD_READ and fd == 0:
        return _EVENT.pack(userdata, ERRNO_SUCCESS, tag, state.stdin_size, 0)
    if tag == EVENTTYPE_FD_WRITE and fd in (1, 2):
        return _EVENT.pack(userdata, ERRNO_SUCCESS, tag, state.output_room(fd), 0)
    return _EVENT.pack(userdata, ERRNO_BADF, tag, 0, 0)


def _sleep(state: RunState, timers: list[tuple[float, int]]) -> list[bytes]:
    """Sleep until the earliest timer, but never past the run's deadline."""
    now = time.monotonic()
    delay = min(delay for delay, _ in timers)
    if now + delay > state.deadline:
        time.sleep(max(0.0, state.deadline - now))
        state.stop(Outcome.TIMEOUT, "slept past the deadline")
    time.sleep(delay)
    return list(_clock_events(timers, delay))


def _virtual_sleep(state: RunState, timers: list[tuple[float, int]]) -> list[bytes]:
    """Advance the virtual clock to the earliest timer at once; the time limit still holds."""
    delay = min(delay for delay, _ in timers)
    delay_ns = round(delay * 1e9)
    limit_ns = round(state.timeout_seconds * 1e9)
    if state.virtual_ns + delay_ns > limit_ns:
        state.virtual_ns = limit_ns
        state.stop(Outcome.TIMEOUT, "slept past the deadline")
    state.virtual_ns += delay_ns
    return list(_clock_events(timers, delay))


def _clock_events(timers: list[tuple[float, int]], elapsed: float) -> Iterator[bytes]:
    for delay, userdata in timers:
        if delay <= elapsed:
            yield _EVENT.pack(userdata, ERRNO_SUCCESS, EVENTTYPE_CLOCK, 0, 0)
