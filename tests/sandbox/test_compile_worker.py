"""Compilation in worker processes: budgets enforced from outside, verdicts remembered,
crashes reported as crashes, and nothing of the service's environment inherited."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.sandbox import wasm_builder
from wasmwiz.sandbox import (
    CompileLimits,
    InspectionLimits,
    Limits,
    ModuleRefused,
    Outcome,
    RunRequest,
    Sandbox,
    load_example,
)
from wasmwiz.sandbox.compile_pool import CRASH_CAUSES
from wasmwiz.sandbox.compile_protocol import (
    EXIT_OUT_OF_MEMORY,
    REQUEST,
    WORKER_MODULE,
    WorkerRules,
)
from wasmwiz.sandbox.models import CompileWorkerCrashed

SEGFAULTING_WORKER = Path(__file__).parent / "segfaulting_worker.py"

# 100,000 empty functions take about 6 CPU seconds and 640 MiB to compile here.
SLOW_TO_COMPILE = wasm_builder.many_functions(100_000)
# 200,000 take about 1.2 GiB.
HUNGRY_TO_COMPILE = wasm_builder.many_functions(200_000)
ROOMY_SHAPE = InspectionLimits(max_functions=1_000_000)


def assert_still_works(sandbox: Sandbox) -> None:
    result = sandbox.run(sandbox.prepare(load_example("hello")), RunRequest())
    assert result.stdout == b"Hello, WasmWiz!\n"


def rejection_code(sandbox: Sandbox, data: bytes) -> str:
    with pytest.raises(ModuleRefused) as caught:
        sandbox.prepare(data)
    return caught.value.code


def test_compile_over_the_cpu_budget_is_compile_timeout_and_remembered() -> None:
    limits = CompileLimits(timeout_seconds=1, workers=1)
    with Sandbox(compile_limits=limits, inspection=ROOMY_SHAPE, max_concurrency=1) as sandbox:
        started = time.monotonic()
        assert rejection_code(sandbox, SLOW_TO_COMPILE) == "compile_timeout"
        first = time.monotonic() - started

        started = time.monotonic()
        assert rejection_code(sandbox, SLOW_TO_COMPILE) == "compile_timeout"
        again = time.monotonic() - started

        assert_still_works(sandbox)
        stats = sandbox.stats()

    assert again < first / 10  # refused by digest, without a worker
    assert stats.compile_workers_replaced == 1


def test_a_module_over_the_limit_unmetered_is_refused_metered_without_a_compile() -> None:
    # Metering only adds code to compile: one overrun on the unmetered engine is enough
    # for both, and the metered engine refuses it without a worker.
    limits = CompileLimits(timeout_seconds=1, workers=1)
    metered = Limits(max_fuel=10**9)
    with Sandbox(compile_limits=limits, inspection=ROOMY_SHAPE, max_concurrency=1) as sandbox:
        assert rejection_code(sandbox, SLOW_TO_COMPILE) == "compile_timeout"
        with pytest.raises(ModuleRefused) as caught:
            sandbox.prepare(SLOW_TO_COMPILE, metered)
        assert_still_works(sandbox)
        stats = sandbox.stats()

    assert caught.value.code == "compile_timeout"
    assert stats.compile_workers_replaced == 1  # the one overrun, not one per engine


def test_compile_over_the_memory_cap_is_compile_memory_limit() -> None:
    limits = CompileLimits(timeout_seconds=60, memory_bytes=400 * 1024 * 1024, workers=1)
    with Sandbox(compile_limits=limits, inspection=ROOMY_SHAPE, max_concurrency=1) as sandbox:
        assert rejection_code(sandbox, HUNGRY_TO_COMPILE) == "compile_memory_limit"
        assert rejection_code(sandbox, HUNGRY_TO_COMPILE) == "compile_memory_limit"
        assert_still_works(sandbox)
        assert sandbox.stats().compile_workers_replaced == 1


def test_a_stuck_worker_is_killed_by_the_wall_clock_backstop() -> None:
    # A stopped process burns no CPU: only the wall-clock timer can end its compile.
    limits = CompileLimits(timeout_seconds=0.5, workers=1)
    with Sandbox(compile_limits=limits, max_concurrency=1) as sandbox:
        sandbox.prepare(load_example("hello"))  # starts the worker
        worker = sandbox._compiler._pool._idle[0]
        os.kill(worker.process.pid, signal.SIGSTOP)

        assert rejection_code(sandbox, load_example("echo")) == "compile_timeout"

        assert worker.process.poll() is not None
        assert sandbox.run(sandbox.prepare(load_example("loop").replace(b"$l", b"$m")),
                           RunRequest()).outcome is Outcome.TIMEOUT  # fmt: skip


def test_a_module_wasmtime_refuses_in_the_worker_is_invalid_wasm(sandbox: Sandbox) -> None:
    # Valid to the validator, beyond Cranelift's limit of 65,520 br_table targets.
    assert rejection_code(sandbox, wasm_builder.big_br_table(70_000)) == "invalid_wasm"
    assert_still_works(sandbox)


def test_workers_compile_concurrently_and_are_reused() -> None:
    with Sandbox(compile_limits=CompileLimits(workers=2), max_concurrency=1) as sandbox:
        for index in range(6):
            wat = load_example("hello").replace(b"WasmWiz", f"worker{index}".encode())
            assert sandbox.run(sandbox.prepare(wat), RunRequest()).outcome is Outcome.SUCCESS
        stats = sandbox.stats()
        live = sandbox._compiler._pool._live

    assert stats.compiles == 6
    assert live <= 2


def test_started_workers_are_replaced_at_once_when_killed() -> None:
    limits = CompileLimits(timeout_seconds=1, workers=2)
    with Sandbox(compile_limits=limits, inspection=ROOMY_SHAPE, max_concurrency=1) as sandbox:
        sandbox.start_compile_workers()
        pool = sandbox._compiler._pool
        assert (pool._live, len(pool._idle)) == (2, 2)

        assert rejection_code(sandbox, SLOW_TO_COMPILE) == "compile_timeout"

        assert (pool._live, len(pool._idle)) == (2, 2)
        assert all(worker.process.poll() is None for worker in pool._idle)
        assert_still_works(sandbox)


def test_a_python_memory_error_in_the_worker_exits_as_out_of_memory() -> None:
    # Python, not wasmtime, runs out under the worker's address-space limit: here by a
    # request claiming a 4 GiB module, which the worker's read allocates up front. (The
    # service never sends one; a big artifact's copy into bytes is the real case.)
    rules = WorkerRules(
        address_space_bytes=400 * 1024 * 1024,
        max_module_bytes=10 << 20,
        max_memory_bytes=128 << 20,
        max_table_elements=100_000,
        inspection=InspectionLimits(),
    )
    worker = subprocess.Popen(
        [sys.executable, "-I", "-m", WORKER_MODULE, rules.to_json()],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = worker.communicate(REQUEST.pack(1000, 4 << 30, False), timeout=60)

    assert worker.returncode == EXIT_OUT_OF_MEMORY, stderr.decode()
    assert stdout == b""  # no reply, and no traceback on the protocol's stream


def test_workers_start_with_an_empty_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The service's secrets are in its environment; the workers must not see them.
    monkeypatch.setenv("API_SALT", "the-service-secret")
    monkeypatch.setenv("DATABASE_URL", "postgresql://user:password@db/wasmwiz")
    with Sandbox(compile_limits=CompileLimits(workers=2), max_concurrency=1) as sandbox:
        sandbox.start_compile_workers()
        assert_still_works(sandbox)  # the workers work without any variable
        pool = sandbox._compiler._pool
        environments = [
            Path(f"/proc/{worker.process.pid}/environ").read_bytes() for worker in pool._idle
        ]
        directories = [os.readlink(f"/proc/{worker.process.pid}/cwd") for worker in pool._idle]

    assert len(environments) == 2
    assert environments == [b"", b""]
    assert directories == ["/", "/"]


def test_a_worker_that_segfaults_is_an_internal_error_and_not_remembered(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    flag = tmp_path / "crash-next"
    flag.touch()
    command = (sys.executable, "-I", str(SEGFAULTING_WORKER), str(flag))
    module = load_example("hello").replace(b"WasmWiz", b"SegvWiz")
    with Sandbox(
        compile_limits=CompileLimits(workers=1), worker_command=command, max_concurrency=1
    ) as sandbox:
        with (
            caplog.at_level(logging.WARNING, logger="wasmwiz.security"),
            pytest.raises(CompileWorkerCrashed) as crashed,
        ):
            sandbox.prepare(module)
        first = sandbox.stats()

        # Not a verdict: the same bytes go to a (new) worker again, and compile.
        again = sandbox.run(sandbox.prepare(module), RunRequest())
        second = sandbox.stats()

    assert not isinstance(crashed.value, ModuleRefused)
    assert "SIGSEGV" in str(crashed.value)
    assert (first.compile_worker_crashes, first.compile_workers_replaced) == (1, 1)
    assert first.compile_worker_crashes_by_signal == {
        cause: int(cause == "SIGSEGV") for cause in CRASH_CAUSES
    }
    assert again.stdout == b"Hello, SegvWiz!\n"
    assert (second.compiles, second.compile_worker_crashes) == (1, 1)
    [event] = [r for r in caplog.records if getattr(r, "event", None) == "compile_worker_crash"]
    assert event.name == "wasmwiz.security"
    assert event.exit == -signal.SIGSEGV  # type: ignore[attr-defined]


def test_a_worker_imports_only_what_compiling_needs() -> None:
    # Workers start on demand and after every crash or kill: the Sandbox, the compile pool
    # and asyncio are the service's, and a new worker does not load them.
    found = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys, {WORKER_MODULE}; print(' '.join(sorted(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.split()
    assert WORKER_MODULE in found
    loaded = {"asyncio", "wasmwiz.sandbox.sandbox", "wasmwiz.sandbox.compile_pool"} & set(found)
    assert loaded == set()
    # The package still hands out what lives in the modules it no longer imports first.
    assert Sandbox.__module__ == "wasmwiz.sandbox.sandbox"
