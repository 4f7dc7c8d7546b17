"""Host calls are charged to the run: a guest living in them sleeps, it does not hog the GIL."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from wasmwiz.sandbox import Limits, Outcome, RunRequest, Sandbox, wasi_host
from wasmwiz.sandbox.guest import RunState, StopGuest, bind_run, live_runs

_IMPORTS = """
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get"
    (func $clock (param i32 i64 i32) (result i32)))"""

CLOCK_FOREVER = f"""(module {_IMPORTS}
  (memory (export "memory") 1)
  (func (export "_start")
    (loop $again
      (drop (call $clock (i32.const 1) (i64.const 0) (i32.const 100)))
      (br $again))))"""

EMPTY_IOVECS_FOREVER = f"""(module {_IMPORTS}
  (memory (export "memory") 2)
  (func (export "_start")
    (loop $again
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1024) (i32.const 65000)))
      (br $again))))"""


def _lines(count: int) -> str:
    return f"""(module {_IMPORTS}
  (memory (export "memory") 1)
  (data (i32.const 16) "a line of output\\n")
  (func (export "_start") (local $i i32)
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 17))
    (loop $again
      (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const {count}))))))"""


@pytest.mark.parametrize("wat", [CLOCK_FOREVER, EMPTY_IOVECS_FOREVER], ids=["clock", "iovecs"])
def test_a_host_call_loop_gets_its_share_of_cpu_and_then_times_out(wat: str) -> None:
    timeout = 1.0
    with Sandbox(max_concurrency=1) as sandbox:
        compiled = sandbox.prepare(wat.encode())
        cpu, wall = time.thread_time(), time.monotonic()
        # On the main thread: the run's host calls are this thread's CPU time. Three
        # other runs in progress leave it a quarter of the share.
        with contextlib.ExitStack() as others:
            for _ in range(3):
                others.enter_context(bind_run(_state(timeout=5)))
            result = sandbox.run(compiled, RunRequest(), Limits(timeout_seconds=timeout))
        cpu, wall = time.thread_time() - cpu, time.monotonic() - wall

    assert result.outcome is Outcome.TIMEOUT
    assert wall < timeout + 0.5
    # Unthrottled, the loop keeps the thread busy (and the GIL held) as long as the OS
    # lets it run: nearly the whole second on a quiet machine. Its part is a quarter of
    # the share, plus the burst, plus what the wasm between calls and the pauses cost.
    share = wasi_host.HOST_BURST_SECONDS + wasi_host.HOST_SHARE / 4 * timeout
    assert cpu < share + 0.15, f"{cpu:.2f} s of CPU for a share of {share:.2f} s"


def test_a_program_printing_line_by_line_is_not_slowed(monkeypatch: pytest.MonkeyPatch) -> None:
    # Counted, not timed: the run's wall time says more about the machine's load than
    # about the throttle. Each pause the throttle makes is a time.sleep on the thread
    # that runs the guest (Sandbox.run runs it on the caller's); the recorder notes
    # those and sleeps as asked.
    pauses: list[float] = []
    real_sleep = time.sleep
    runner = threading.get_ident()

    def recording_sleep(seconds: float) -> None:
        if threading.get_ident() == runner:
            pauses.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", recording_sleep)
    with Sandbox(max_concurrency=1) as sandbox:
        lines = sandbox.prepare(_lines(2000).encode())
        forever = sandbox.prepare(CLOCK_FOREVER.encode())
        result = sandbox.run(lines, RunRequest(), Limits(timeout_seconds=5))
        pauses_for_lines = list(pauses)
        # The recorder does see the throttle: a host-call loop is paused past its burst.
        sandbox.run(forever, RunRequest(), Limits(timeout_seconds=1))

    assert result.outcome is Outcome.SUCCESS
    assert result.stdout == b"a line of output\n" * 2000
    # 2,000 calls fit in the burst: no pause at all.
    assert pauses_for_lines == []
    assert len(pauses) > 0


def _state(timeout: float) -> RunState:
    state = RunState(max_output_bytes=0, timeout_seconds=timeout, stdin_size=0)
    state.start_clock()
    return state


def test_host_time_past_the_burst_is_slept_off_at_the_runs_share() -> None:
    state = _state(timeout=5)
    with bind_run(state):
        started = time.monotonic()
        wasi_host._charge(state, int(wasi_host.HOST_BURST_SECONDS * 1e9))  # the burst: free
        assert time.monotonic() - started < 0.05
        wasi_host._charge(state, 50_000_000)  # 50 ms beyond it: back in share after 0.2 s
        slept = time.monotonic() - started

    assert state.stop_outcome is None
    assert 50e-3 / wasi_host.HOST_SHARE - 0.01 <= slept < 1.0
    assert state.host_calls == 2


def test_the_share_is_split_between_the_runs_in_progress() -> None:
    state, others = _state(timeout=5), [_state(timeout=5) for _ in range(3)]
    with contextlib.ExitStack() as stack:
        for other in others:
            stack.enter_context(bind_run(other))
        stack.enter_context(bind_run(state))
        assert live_runs() == 4
        started = time.monotonic()
        wasi_host._charge(state, int(wasi_host.HOST_BURST_SECONDS * 1e9) + 25_000_000)
        slept = time.monotonic() - started

    # A quarter of the share each: 25 ms of host time costs 4 / HOST_SHARE times as much.
    assert slept >= 25e-3 * 4 / wasi_host.HOST_SHARE - 0.01
    assert live_runs() == 0


def test_a_run_whose_share_comes_back_after_its_deadline_times_out_at_it() -> None:
    state = _state(timeout=0.3)
    started = time.monotonic()
    with bind_run(state), pytest.raises(StopGuest):
        wasi_host._charge(state, int(wasi_host.HOST_BURST_SECONDS * 1e9) + 500_000_000)
    waited = time.monotonic() - started

    assert state.stop_outcome is Outcome.TIMEOUT
    assert 0.25 <= waited < 0.6  # until the deadline, not the 2 s the share would need
