"""execute() on the sandbox's own threads: concurrency limits, queueing, caching, closing."""

from __future__ import annotations

import asyncio
import contextlib
import threading

import pytest
from opentelemetry import trace

from tests.sandbox.conftest import fixture_wat
from wasmwiz.sandbox import (
    Limits,
    ModuleRefused,
    Outcome,
    RunRequest,
    Sandbox,
    SandboxBusy,
    SandboxError,
    load_example,
)
from wasmwiz.sandbox.workers import WorkerPool

pytestmark = pytest.mark.anyio

SHORT = Limits(timeout_seconds=0.3)


async def test_execute_runs_on_a_worker_thread(sandbox: Sandbox) -> None:
    result = await sandbox.execute(load_example("hello"), RunRequest())

    assert result.outcome is Outcome.SUCCESS
    assert result.stdout == b"Hello, WasmWiz!\n"


async def test_a_job_runs_in_its_submitters_context() -> None:
    # The request's trace (OpenTelemetry keeps it in a contextvar) is current on the
    # worker too: a log line written there carries the request's trace id.
    span = trace.NonRecordingSpan(
        trace.SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=False)
    )
    pool = WorkerPool(max_workers=1, max_queue=1)
    try:
        with trace.use_span(span):
            seen = await pool.submit_async(
                lambda: trace.get_current_span().get_span_context().trace_id
            )
        outside = await pool.submit_async(
            lambda: trace.get_current_span().get_span_context().trace_id
        )
    finally:
        pool.close()
    assert seen == 0x1234
    assert outside == 0  # no trace there: nothing leaks from one job to the next


async def test_stack_overflow_on_worker_threads_is_an_outcome(sandbox: Sandbox) -> None:
    results = await asyncio.gather(
        *(sandbox.execute(fixture_wat("recursion"), RunRequest(), SHORT) for _ in range(4))
    )

    assert [r.outcome for r in results] == [Outcome.STACK_OVERFLOW] * 4


async def test_execute_raises_module_rejected(sandbox: Sandbox) -> None:
    with pytest.raises(ModuleRefused) as caught:
        await sandbox.execute(fixture_wat("unknown_import"), RunRequest())

    assert caught.value.code == "unsupported_import"


async def test_twenty_concurrent_mixed_runs() -> None:
    cases = [
        (load_example("hello"), b"", Outcome.SUCCESS, b"Hello, WasmWiz!\n"),
        (load_example("echo"), b"ping" * 1000, Outcome.SUCCESS, b"ping" * 1000),
        (fixture_wat("exit3"), b"", Outcome.EXIT_NONZERO, b""),
        (fixture_wat("unreachable"), b"", Outcome.TRAP, b""),
        (fixture_wat("recursion"), b"", Outcome.STACK_OVERFLOW, b""),
        (fixture_wat("print_forever"), b"", Outcome.OUTPUT_LIMIT, b"0123456789" * 1000),
        (fixture_wat("sleep60"), b"", Outcome.TIMEOUT, b""),
        (load_example("loop"), b"", Outcome.TIMEOUT, b""),
        (fixture_wat("grow_bomb"), b"", Outcome.MEMORY_LIMIT, b""),
        (fixture_wat("print_args_env"), b"", Outcome.SUCCESS, None),
    ]
    # The runs that must time out get 1 s; the others get 10 s, so that the printing case's
    # thousand host calls (which share wall time with the spinners) finish on a loaded machine.
    short = Limits(timeout_seconds=1.0, memory_bytes=2 * 1024 * 1024, max_output_bytes=10_000)
    long = Limits(timeout_seconds=10.0, memory_bytes=2 * 1024 * 1024, max_output_bytes=10_000)
    with Sandbox(max_concurrency=4, max_queue=64) as sandbox:
        results = await asyncio.gather(
            *(
                sandbox.execute(
                    wat,
                    RunRequest(stdin=stdin, env=(("I", str(i)),)),
                    short if outcome is Outcome.TIMEOUT else long,
                )
                for i, (wat, stdin, outcome, _) in enumerate(cases * 2)
            )
        )
        stats = sandbox.stats()

    for i, (result, (_, _, outcome, stdout)) in enumerate(zip(results, cases * 2, strict=True)):
        assert result.outcome is outcome, (i, result.error)
        if stdout is not None:
            assert result.stdout == stdout
        else:
            assert result.stdout.endswith(f"I={i}\n".encode())
    assert stats.cache_misses == len(cases)
    assert stats.cache_hits == len(cases)
    assert (stats.in_flight, stats.queued) == (0, 0)


async def test_full_queue_raises_sandbox_busy_at_once() -> None:
    loop_wat = load_example("loop")
    with Sandbox(max_concurrency=1, max_queue=1) as sandbox:
        sandbox.prepare(loop_wat)
        running = asyncio.create_task(sandbox.execute(loop_wat, RunRequest(), SHORT))
        waiting = asyncio.create_task(sandbox.execute(loop_wat, RunRequest(), SHORT))
        await asyncio.sleep(0.05)
        assert (sandbox.stats().in_flight, sandbox.stats().queued) == (1, 1)

        with pytest.raises(SandboxBusy):
            await sandbox.execute(loop_wat, RunRequest(), SHORT)

        outcomes = [(await task).outcome for task in (running, waiting)]
    assert outcomes == [Outcome.TIMEOUT, Outcome.TIMEOUT]


async def test_a_queued_run_whose_caller_left_is_skipped() -> None:
    loop_wat = load_example("loop")
    with Sandbox(max_concurrency=1, max_queue=1) as sandbox:
        sandbox.prepare(loop_wat)
        running = asyncio.create_task(sandbox.execute(loop_wat, RunRequest(), SHORT))
        await asyncio.sleep(0.05)
        queued = asyncio.create_task(sandbox.execute(load_example("hello"), RunRequest()))
        await asyncio.sleep(0.01)
        assert sandbox.stats().queued == 1
        queued.cancel()

        assert (await running).outcome is Outcome.TIMEOUT
        with contextlib.suppress(asyncio.CancelledError):
            await queued
        # The worker skipped the job: hello was never even prepared, and the slot is free.
        await asyncio.sleep(0.05)
        stats = sandbox.stats()
    assert (stats.in_flight, stats.queued) == (0, 0)
    assert (stats.cache_hits + stats.cache_misses, stats.cache_misses) == (2, 1)


async def test_a_failure_on_a_worker_reaches_the_awaiting_caller() -> None:
    with Sandbox(max_concurrency=2) as sandbox:
        outcomes = await asyncio.gather(
            sandbox.execute(b"not wasm", RunRequest()),
            sandbox.execute(load_example("hello"), RunRequest()),
            return_exceptions=True,
        )
    assert isinstance(outcomes[0], ModuleRefused)
    assert not isinstance(outcomes[1], BaseException)
    assert outcomes[1].stdout == b"Hello, WasmWiz!\n"


async def test_execute_after_close_is_refused() -> None:
    sandbox = Sandbox(max_concurrency=1)
    sandbox.close()

    with pytest.raises(SandboxError):
        await sandbox.execute(load_example("hello"), RunRequest())


def test_same_bytes_are_compiled_once() -> None:
    hello = load_example("hello")
    with Sandbox(max_concurrency=1) as sandbox:
        first = sandbox.prepare(hello)
        second = sandbox.prepare(hello)
        stats = sandbox.stats()

    assert second is first
    assert (stats.cache_misses, stats.cache_hits, stats.cache_entries) == (1, 1, 1)
    assert stats.cache_bytes > 0


def test_concurrent_prepares_of_the_same_bytes_share_one_compilation() -> None:
    # A distinct module, so no other test has compiled it in this process.
    wat = load_example("hello").replace(b"Hello, WasmWiz!", b"Hello, threads!")
    compiled = []
    with Sandbox(max_concurrency=1) as sandbox:
        threads = [
            threading.Thread(target=lambda: compiled.append(sandbox.prepare(wat))) for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stats = sandbox.stats()

    assert len(compiled) == 8
    assert all(c is compiled[0] for c in compiled)
    assert stats.cache_misses == 1
    assert stats.cache_hits == 7


def test_cache_is_bounded_by_bytes() -> None:
    with Sandbox(max_concurrency=1, cache_max_bytes=100_000) as sandbox:
        for i in range(10):
            sandbox.prepare(load_example("hello").replace(b"WasmWiz", f"cache{i:02}".encode()))
        stats = sandbox.stats()

    assert stats.cache_misses == 10
    assert 0 < stats.cache_entries < 10
    assert stats.cache_bytes <= 100_000


def test_check_passes_on_a_working_engine(sandbox: Sandbox) -> None:
    sandbox.check()


async def test_host_calls_near_the_stack_limit_on_worker_threads(sandbox: Sandbox) -> None:
    results = await asyncio.gather(
        *(
            # 32,000 fd_write calls each, one per frame: two runs' share of host time
            # needs several seconds of wall time, and the point here is the stack.
            sandbox.execute(
                fixture_wat("recursion_print"), RunRequest(), Limits(timeout_seconds=30)
            )
            for _ in range(2)
        )
    )

    for result in results:
        assert result.outcome is Outcome.STACK_OVERFLOW
        assert len(result.stdout) > 1000
        assert set(result.stdout) == {ord(".")}


async def test_execute_does_not_block_the_event_loop(sandbox: Sandbox) -> None:
    ticks = 0

    async def count_ticks() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    counter = asyncio.create_task(count_ticks())
    result = await sandbox.execute(load_example("loop"), RunRequest(), SHORT)
    counter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await counter

    assert result.outcome is Outcome.TIMEOUT
    assert ticks >= 10
