"""Runs take their instances from slots reserved with the engine (wasmtime's pooling
allocator), which keeps each slot's memory mapped from one run to the next.

So: nothing one run leaves in memory reaches the next; a module whose instance state is
larger than wasmtime's default slot still runs; a run that finds every slot taken is
told the server is busy, not blamed on its guest; and a run that traps gives its slot
back at once, not when the garbage collector comes by.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
import wasmtime

from wasmwiz.sandbox import CompiledModule, Limits, Outcome, RunRequest, Sandbox
from wasmwiz.sandbox.engine import POOL_KEEP_RESIDENT_BYTES, POOL_SPARE_SLOTS, EngineContext
from wasmwiz.sandbox.models import SandboxBusy
from wasmwiz.sandbox.runner import run_compiled

LIMITS = Limits(timeout_seconds=5)
PAGE = 65536
# Scans its memory (and a megabyte it grows) for any byte not zero, says "clean" or
# "dirty", then fills all of it with 0xAA for whichever run gets the slot next. The
# message lives past the scanned bytes, where a data segment writes it on every run.
SCAN_THEN_SOIL = f"""
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 64)
  (data (i32.const {63 * PAGE}) "clean\\n")
  (data (i32.const {63 * PAGE + 16}) "dirty\\n")
  (func $dirty (param $from i32) (param $to i32) (result i32)
    (block $found
      (loop $next
        (br_if $found (i64.ne (i64.load (local.get $from)) (i64.const 0)))
        (local.set $from (i32.add (local.get $from) (i32.const 8)))
        (br_if $next (i32.lt_u (local.get $from) (local.get $to))))
      (return (i32.const 0)))
    (i32.const 1))
  (func (export "_start")
    (local $message i32)
    (drop (memory.grow (i32.const 16)))
    (local.set $message (i32.const {63 * PAGE}))
    (if (i32.or (call $dirty (i32.const 0) (i32.const {63 * PAGE}))
                (call $dirty (i32.const {64 * PAGE}) (i32.const {80 * PAGE})))
      (then (local.set $message (i32.const {63 * PAGE + 16}))))
    (i32.store (i32.const {63 * PAGE + 32}) (local.get $message))
    (i32.store (i32.const {63 * PAGE + 36}) (i32.const 6))
    (drop (call $fd_write (i32.const 1) (i32.const {63 * PAGE + 32}) (i32.const 1)
                          (i32.const {63 * PAGE + 40})))
    (memory.fill (i32.const 0) (i32.const 0xAA) (i32.const {63 * PAGE}))
    (memory.fill (i32.const {64 * PAGE}) (i32.const 0xAA) (i32.const {16 * PAGE}))))
"""
TRAPS = '(module (memory (export "memory") 1) (func (export "_start") unreachable))'
EXITS = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const 3))))
"""


@pytest.fixture
def context() -> Iterator[EngineContext]:
    """Engines whose pools have a slot for one run at a time (and the spares)."""
    engines = EngineContext(runs_at_once=1)
    try:
        yield engines
    finally:
        engines.close()


def compiled_for(context: EngineContext, wat: str) -> CompiledModule:
    """`wat` compiled in this process for the context's unmetered engine."""
    engine = context.unmetered
    wasm_module = wasmtime.Module(engine.engine, wat)
    return CompiledModule(
        sha256="0" * 64,
        size=len(wat),
        metered=False,
        min_memory_bytes=0,
        min_table_elements=0,
        artifact_bytes=0,
        wasm_module=wasm_module,
        instance_pre=engine.linker.instantiate_pre(wasm_module),
    )


def take_slots(context: EngineContext, compiled: CompiledModule, count: int) -> list[object]:
    """Stores each holding one instance, so one slot of the pool, for as long as kept."""
    held: list[object] = []
    for _ in range(count):
        store = context.unmetered.new_store(RunRequest(), LIMITS, 1_000)
        compiled.instance_pre.instantiate(store)
        held.append(store)
    return held


def test_a_run_never_finds_what_the_run_before_it_left_in_memory(sandbox: Sandbox) -> None:
    compiled = sandbox.prepare(SCAN_THEN_SOIL.encode())

    outputs = [sandbox.run(compiled, RunRequest()).stdout for _ in range(20)]

    assert outputs == [b"clean\n"] * 20
    # It scans far past what the pool keeps mapped between runs, and what it grew.
    assert 63 * PAGE > POOL_KEEP_RESIDENT_BYTES


def test_a_module_with_a_large_instance_state_runs(sandbox: Sandbox) -> None:
    # 100,000 globals take 1.6 MB of the instance's own state: more than wasmtime's
    # pooling allocator allows an instance by default (1 MiB), which would refuse it.
    globals_ = "\n".join(f"(global i64 (i64.const {i}))" for i in range(100_000))
    wat = f'(module {globals_} (memory (export "memory") 1) (func (export "_start")))'

    result = sandbox.run(sandbox.prepare(wat.encode()), RunRequest())

    assert result.outcome is Outcome.SUCCESS


def test_a_run_that_finds_every_slot_taken_is_busy(context: EngineContext) -> None:
    compiled = compiled_for(context, TRAPS)
    held = take_slots(context, compiled, 1 + POOL_SPARE_SLOTS)

    with pytest.raises(SandboxBusy):
        run_compiled(context, compiled, RunRequest(), LIMITS)

    held.pop()
    assert run_compiled(context, compiled, RunRequest(), LIMITS).outcome is Outcome.TRAP


@pytest.mark.parametrize(
    ("wat", "outcome"),
    [(TRAPS, Outcome.TRAP), (EXITS, Outcome.EXIT_NONZERO)],
    ids=["trap", "proc_exit"],
)
def test_a_run_that_ends_by_an_error_gives_its_slot_back_at_once(
    context: EngineContext, wat: str, outcome: Outcome
) -> None:
    compiled = compiled_for(context, wat)
    gc.disable()  # what a reference cycle holds stays held
    try:
        for _ in range(3):
            assert run_compiled(context, compiled, RunRequest(), LIMITS).outcome is outcome
        # Every slot can still be taken: none is held by a finished run's Store.
        assert len(take_slots(context, compiled, 1 + POOL_SPARE_SLOTS)) == 1 + POOL_SPARE_SLOTS
    finally:
        gc.enable()


def test_under_a_low_address_space_limit_runs_map_their_memory_instead() -> None:
    # wasmtime aborts the process when it cannot map a pool (a panic in its C API), so
    # this runs in a child process limited to 16 GiB of address space: the pools of a
    # Sandbox of 4 workers would take about 160.
    script = textwrap.dedent(
        """
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, resource.RLIM_INFINITY))
        from wasmwiz.sandbox import RunRequest, Sandbox, load_example
        with Sandbox(max_concurrency=4) as box:
            result = box.run(box.prepare(load_example("hello")), RunRequest())
            print(result.stdout.decode(), end="")
        """
    )
    child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )

    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout == "Hello, WasmWiz!\n"
    assert "address-space limit (RLIMIT_AS" in child.stderr
