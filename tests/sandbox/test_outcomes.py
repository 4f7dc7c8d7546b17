"""Every outcome of a run, each produced by a real guest in real wasmtime."""

from __future__ import annotations

import mmap
import os
import struct
import time
from collections.abc import Callable

import pytest

from tests.sandbox.conftest import fixture_wat
from wasmwiz.sandbox import (
    Limits,
    ModuleRefused,
    Outcome,
    RunRequest,
    RunResult,
    Sandbox,
    load_example,
)

SHORT = Limits(timeout_seconds=0.5)
MARGIN_SECONDS = 0.35  # epoch tick granularity plus scheduling noise on a busy CI machine


def run(sandbox: Sandbox, wat: bytes, limits: Limits = SHORT, **request: object) -> RunResult:
    return sandbox.run(sandbox.prepare(wat, limits), RunRequest(**request), limits)  # type: ignore[arg-type]


def test_hello_world(sandbox: Sandbox) -> None:
    result = run(sandbox, load_example("hello"))

    assert result.outcome is Outcome.SUCCESS
    assert result.exit_code == 0
    assert result.stdout == b"Hello, WasmWiz!\n"
    assert result.stderr == b""
    assert not result.stdout_truncated
    assert result.error is None
    assert result.fuel_consumed is None  # no fuel budget: not metered
    assert result.memory_peak_bytes == 65536
    assert len(result.module_sha256) == 64
    assert result.module_size > 0


def test_echo_round_trips_one_mebibyte_of_binary_stdin(sandbox: Sandbox) -> None:
    data = os.urandom(1024 * 1024)

    result = run(sandbox, load_example("echo"), Limits(timeout_seconds=5), stdin=data)

    assert result.outcome is Outcome.SUCCESS
    assert result.stdout == data


def test_a_module_and_stdin_given_as_views_of_a_buffer_run_as_bytes_would(
    sandbox: Sandbox,
) -> None:
    # The form hands both over as views of its one buffer (http_common/multipart.py).
    # A comment makes the module new to the cache, so it goes to a compile worker.
    module = memoryview(bytearray(load_example("echo") + b"\n;; from a view\n"))
    data = os.urandom(300_000)

    result = sandbox.run(
        sandbox.prepare(module), RunRequest(stdin=memoryview(data)), Limits(timeout_seconds=5)
    )

    assert result.outcome is Outcome.SUCCESS
    assert result.stdout == data


@pytest.mark.parametrize(
    "view",
    [
        pytest.param(lambda data: memoryview(data), id="read-only view of bytes"),
        pytest.param(lambda data: memoryview(bytearray(data)), id="writable view"),
        pytest.param(lambda data: _mapped(data), id="view of an anonymous mapping"),
        pytest.param(lambda data: memoryview(data)[::2], id="strided view"),
        pytest.param(lambda data: memoryview(b"x" + data)[1:], id="offset view"),
    ],
)
def test_stdin_from_any_kind_of_view_reaches_the_guest_intact(
    sandbox: Sandbox, view: Callable[[bytes], memoryview]
) -> None:
    # stdin is copied once, in place from the view (sandbox/wasmtime_ffi.py), whatever
    # kind of buffer it views: the form's mapping, a bytearray, or bytes.
    stdin = view(os.urandom(200_000))
    expected = stdin.tobytes()

    result = sandbox.run(
        sandbox.prepare(load_example("echo")), RunRequest(stdin=stdin), Limits(timeout_seconds=5)
    )

    assert result.outcome is Outcome.SUCCESS
    assert result.stdout == expected


def _mapped(data: bytes) -> memoryview:
    mapping = mmap.mmap(-1, len(data) + 4096)
    mapping.write(data)
    return memoryview(mapping)[: len(data)]


def test_args_and_env_are_exactly_what_was_sent(sandbox: Sandbox) -> None:
    result = run(
        sandbox,
        fixture_wat("print_args_env"),
        args=("a", "b c"),
        env=(("FOO", "bar"), ("EMPTY", "")),
        program_name="prog.wasm",
    )

    assert result.outcome is Outcome.SUCCESS
    assert result.stdout == (
        b"argc=3 argv_bytes=16 envc=2 env_bytes=15\nprog.wasm\na\nb c\nFOO=bar\nEMPTY=\n"
    )


def test_no_env_means_an_empty_environment(sandbox: Sandbox) -> None:
    assert os.environ  # the host has variables; none may reach the guest

    result = run(sandbox, fixture_wat("print_args_env"))

    assert result.stdout == b"argc=1 argv_bytes=10 envc=0 env_bytes=0\nmain.wasm\n"


def test_exit_code_three_is_exit_nonzero(sandbox: Sandbox) -> None:
    result = run(sandbox, fixture_wat("exit3"))

    assert result.outcome is Outcome.EXIT_NONZERO
    assert result.exit_code == 3
    assert result.error == "exited with code 3"


def test_explicit_exit_zero_is_success(sandbox: Sandbox) -> None:
    result = run(sandbox, fixture_wat("exit0"))

    assert result.outcome is Outcome.SUCCESS
    assert result.exit_code == 0
    assert result.error is None


def test_unreachable_is_a_trap(sandbox: Sandbox) -> None:
    result = run(sandbox, fixture_wat("unreachable"))

    assert result.outcome is Outcome.TRAP
    assert result.exit_code is None
    assert result.error == "trap: unreachable instruction executed"


def test_division_by_zero_is_a_trap(sandbox: Sandbox) -> None:
    result = run(sandbox, fixture_wat("div_zero"))

    assert result.outcome is Outcome.TRAP
    assert result.error == "trap: integer divide by zero"


def test_infinite_loop_times_out_at_the_deadline(sandbox: Sandbox) -> None:
    result = run(sandbox, load_example("loop"))

    assert result.outcome is Outcome.TIMEOUT
    assert result.exit_code is None
    assert result.error == "execution timed out after 0.5s"
    assert 0.5 <= result.duration_seconds < 0.5 + MARGIN_SECONDS


def test_start_section_loop_times_out(sandbox: Sandbox) -> None:
    result = run(sandbox, fixture_wat("start_loop"))

    assert result.outcome is Outcome.TIMEOUT
    assert result.duration_seconds < 0.5 + MARGIN_SECONDS


def test_sleeping_guest_is_stopped_at_the_deadline(sandbox: Sandbox) -> None:
    result = run(sandbox, fixture_wat("sleep60"))

    assert result.outcome is Outcome.TIMEOUT
    assert result.error == "execution timed out after 0.5s"
    assert 0.45 <= result.duration_seconds < 0.5 + MARGIN_SECONDS


def test_short_sleep_completes_with_its_clock_event(sandbox: Sandbox) -> None:
    result = run(sandbox, fixture_wat("sleep_short"), Limits(timeout_seconds=2))

    assert result.outcome is Outcome.SUCCESS
    errno, nevents, userdata = struct.unpack("<IIQ", result.stdout)
    assert (errno, nevents, userdata) == (0, 1, 7)
    assert result.duration_seconds >= 0.05


def test_memory_grow_bomb_is_memory_limit(sandbox: Sandbox) -> None:
    limit = 4 * 1024 * 1024

    result = run(sandbox, fixture_wat("grow_bomb"), Limits(memory_bytes=limit))

    assert result.outcome is Outcome.MEMORY_LIMIT
    assert result.memory_peak_bytes == limit
    assert result.error is not None
    assert "memory limit" in result.error


def test_declared_minimum_above_the_sandbox_limit_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleRefused) as caught:
        sandbox.prepare(fixture_wat("huge_min_memory"))

    assert caught.value.code == "declared_memory_too_large"


def test_declared_minimum_above_a_run_limit_is_memory_limit() -> None:
    roomy = Limits(timeout_seconds=2, memory_bytes=30000 * 65536)
    with Sandbox(limits=roomy, max_concurrency=1) as big:
        compiled = big.prepare(fixture_wat("huge_min_memory"))
        refused = big.run(compiled, RunRequest(), SHORT)
        fits = big.run(compiled, RunRequest(), roomy)

    assert refused.outcome is Outcome.MEMORY_LIMIT
    assert refused.exit_code is None
    assert refused.memory_peak_bytes == 0
    assert fits.outcome is Outcome.SUCCESS
    assert fits.memory_peak_bytes == 30000 * 65536


def test_unbounded_recursion_is_stack_overflow(sandbox: Sandbox) -> None:
    result = run(sandbox, fixture_wat("recursion"))

    assert result.outcome is Outcome.STACK_OVERFLOW
    assert result.exit_code is None


def test_printing_forever_keeps_exactly_the_cap_of_stdout(sandbox: Sandbox) -> None:
    limits = Limits(timeout_seconds=2, max_output_bytes=1005)

    result = run(sandbox, fixture_wat("print_forever"), limits)

    assert result.outcome is Outcome.OUTPUT_LIMIT
    assert result.stdout == (b"0123456789" * 101)[:1005]
    assert result.stdout_truncated
    assert not result.stderr_truncated
    assert result.exit_code is None
    assert result.duration_seconds < 1.5  # stopped at the cap, not by the 2 s deadline


def test_printing_forever_keeps_exactly_the_cap_of_stderr(sandbox: Sandbox) -> None:
    limits = Limits(timeout_seconds=2, max_output_bytes=1005)

    result = run(sandbox, fixture_wat("print_forever_stderr"), limits)

    assert result.outcome is Outcome.OUTPUT_LIMIT
    assert result.stderr == (b"0123456789" * 101)[:1005]
    assert result.stderr_truncated
    assert result.stdout == b""


def test_output_exactly_at_the_cap_is_not_truncated(sandbox: Sandbox) -> None:
    at_cap = run(sandbox, load_example("hello"), Limits(max_output_bytes=16))
    over_cap = run(sandbox, load_example("hello"), Limits(max_output_bytes=15))

    assert at_cap.outcome is Outcome.SUCCESS
    assert not at_cap.stdout_truncated
    assert over_cap.outcome is Outcome.OUTPUT_LIMIT
    assert over_cap.stdout == b"Hello, WasmWiz!"


def test_fuel_budget_is_fuel_exhausted(sandbox: Sandbox) -> None:
    result = run(sandbox, load_example("loop"), Limits(timeout_seconds=5, max_fuel=10_000))

    assert result.outcome is Outcome.FUEL_EXHAUSTED
    assert result.fuel_consumed == 10_000
    assert result.duration_seconds < 2.5  # stopped by fuel, not by the 5 s deadline


def test_a_budget_larger_than_the_run_needs_counts_its_fuel(sandbox: Sandbox) -> None:
    result = run(sandbox, load_example("hello"), Limits(timeout_seconds=5, max_fuel=10**9))

    assert result.outcome is Outcome.SUCCESS
    assert result.fuel_consumed is not None
    assert 0 < result.fuel_consumed < 10**9


def test_out_of_bounds_pointers_get_errnos_not_crashes(sandbox: Sandbox) -> None:
    result = run(sandbox, fixture_wat("bad_pointers"))

    assert result.outcome is Outcome.SUCCESS
    efault, ebadf = 21, 8
    assert struct.unpack("<5I", result.stdout) == (efault, efault, efault, efault, ebadf)


def test_a_host_call_from_an_empty_memory_gets_efault(sandbox: Sandbox) -> None:
    # The memory a host call sees is looked up from its caller (sandbox/wasmtime_ffi.py,
    # caller_memory): an exported memory of no pages has no byte a pointer may reach.
    wat = b"""(module
      (import "wasi_snapshot_preview1" "fd_write"
        (func $write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 0)
      (func (export "_start")
        (call $exit (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 0)))))"""

    result = run(sandbox, wat)

    assert result.outcome is Outcome.EXIT_NONZERO
    assert result.exit_code == 21  # EFAULT
    assert result.stdout == b""


def test_declared_table_above_the_element_cap_is_refused(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleRefused) as caught:
        sandbox.prepare(fixture_wat("huge_table"))

    assert caught.value.code == "declared_table_too_large"


def test_requests_with_nul_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        RunRequest(args=("a\0b",))
    with pytest.raises(ValueError, match="environment"):
        RunRequest(env=(("A=B", "c"),))


def test_clocks_and_absolute_sleeps(sandbox: Sandbox) -> None:
    before = time.time_ns()

    result = run(sandbox, fixture_wat("clocks"), Limits(timeout_seconds=2))

    realtime, mono_start, mono_end, bad_clock_errno = struct.unpack("<QQQI", result.stdout)
    assert before <= realtime <= time.time_ns()
    assert mono_end - mono_start >= 30_000_000
    assert mono_end < 2_000_000_000  # counted from the start of the run
    assert bad_clock_errno == 28  # EINVAL
