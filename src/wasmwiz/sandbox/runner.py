"""Run one CompiledModule in a fresh Store and classify how the run ended.

How a run is classified, in order:

1. What the host functions recorded in the run's `RunState` (output cap reached, slept
   past the deadline). Exceptions coming back from wasmtime are not trusted for this.
2. The exception's type: `ExitTrap` (proc_exit) -> success for 0, else exit_nonzero;
   `Trap` -> by `trap_code` (INTERRUPT -> timeout, OUT_OF_FUEL -> fuel_exhausted,
   STACK_OVERFLOW -> stack_overflow, anything else -> trap); any other `WasmtimeError`
   -> trap. Message text is only ever shown, never used to decide.
3. The memory-limit rule. Hitting the limit is not a trap: `memory.grow` returns -1 and
   the guest then fails on its own. So a run that failed (a trap other than timeout, fuel
   or stack overflow, or a non-zero exit) is reported as memory_limit when its exported
   memory ended within one growth step of the limit, a step being
   max(64 KiB, memory_bytes // 16): `memory_bytes - final_size < step`. A module whose
   declared minimum memory (or table size) exceeds the limits is memory_limit without
   being instantiated.

Fuel is counted only for a run with a fuel budget (`Limits.metered`), on the metered
engine; any other run's `fuel_consumed` is None. `fuel_consumed` is what wasmtime has
counted when the run ended. Generated code
keeps the count in a register and stores it at calls, returns and traps, but not when
the epoch deadline interrupts it, so a run stopped by the deadline reports a lower
bound: the fuel counted up to its last call or return (0 for a loop that never calls).
"""

from __future__ import annotations

import time

import wasmtime

from wasmwiz.sandbox import memfs, wasi_host
from wasmwiz.sandbox.compiler import CompiledModule
from wasmwiz.sandbox.engine import MAX_TABLE_ELEMENTS, EngineContext
from wasmwiz.sandbox.file_output import collect
from wasmwiz.sandbox.guest import RunState, bind_run
from wasmwiz.sandbox.models import (
    CollectedFile,
    FilesBudgetSpent,
    Limits,
    Outcome,
    RunRequest,
    RunResult,
    SandboxBusy,
    SandboxError,
)
from wasmwiz.sandbox.validation import summarize
from wasmwiz.sandbox.wasi_files import FileTable
from wasmwiz.sandbox.wasmtime_ffi import call_nullary, instantiate, memory_size, pool_exhausted

WASM_PAGE = 65536

_TRAP_DESCRIPTIONS = {
    wasmtime.TrapCode.STACK_OVERFLOW: "call stack exhausted",
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: "out of bounds memory access",
    wasmtime.TrapCode.HEAP_MISALIGNED: "misaligned memory access",
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: "out of bounds table access",
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: "indirect call to a null table entry",
    wasmtime.TrapCode.BAD_SIGNATURE: "indirect call type mismatch",
    wasmtime.TrapCode.INTEGER_OVERFLOW: "integer overflow",
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: "integer divide by zero",
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: "invalid conversion to integer",
    wasmtime.TrapCode.UNREACHABLE: "unreachable instruction executed",
}

_Verdict = tuple[Outcome, int | None, str | None]


def run_compiled(
    context: EngineContext, compiled: CompiledModule, request: RunRequest, limits: Limits
) -> RunResult:
    if compiled.metered != limits.metered:
        # A module compiled for one engine cannot run in the other's store.
        raise ValueError(
            "the module was prepared for runs "
            + ("with" if compiled.metered else "without")
            + " a fuel budget; prepare it with the run's limits"
        )
    engine = context.engine_for(compiled.metered)
    state = RunState(
        max_output_bytes=limits.max_output_bytes,
        timeout_seconds=limits.timeout_seconds,
        stdin_size=len(request.stdin),
        deterministic=request.deterministic,
        seed=request.seed,
    )
    refusal = _declared_too_large(compiled, limits)
    if refusal is not None:
        no_fuel = 0 if limits.metered else None
        return _result(compiled, state, (Outcome.MEMORY_LIMIT, None, refusal), 0.0, no_fuel, 0)

    fs = _directory(context, request, limits, state)
    try:
        instance_pre = compiled.instance_pre if fs is None else engine.files_instance_pre(compiled)
        failure: Exception | None = None
        instance: wasmtime.Instance | None = None
        with bind_run(state):
            # Armed before instantiation: a start section runs inside instantiate.
            store = engine.new_store(
                request, limits, context.epoch_deadline_ticks(limits.timeout_seconds)
            )
            state.start_clock()
            started = time.perf_counter()
            try:
                instance = _instantiate(instance_pre, store)
                call_nullary(store, instance, "_start")
            except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
                # Without its traceback: that holds this frame, which holds the error,
                # and the cycle would keep the Store, and its pool slot, until the
                # garbage collector came by.
                failure = exc.with_traceback(None)
            duration = time.perf_counter() - started
        if state.host_error is not None:
            raise SandboxError("a sandbox host function failed") from state.host_error

        memory_bytes = _memory_size(store, instance)
        verdict = _classify(state, failure, limits, memory_bytes)
        fuel_consumed = None
        if limits.max_fuel is not None:
            fuel_consumed = limits.max_fuel - _remaining_fuel(store)
        files: tuple[CollectedFile, ...] = ()
        truncated = False
        if fs is not None:  # whatever the outcome: what a failed run left helps to see why
            files, truncated = collect(fs, request.collect, limits.files_max_output_bytes)
        return _result(
            compiled, state, verdict, duration, fuel_consumed, memory_bytes, files, truncated
        )
    finally:
        if fs is not None:
            fs.release()
            state.files = None  # the run's state, its table and its clock form a cycle


def _instantiate(instance_pre: wasmtime.InstancePre, store: wasmtime.Store) -> wasmtime.Instance:
    """Instantiate, or SandboxBusy when every slot of the engine's instance pool is taken
    (the pool has one for every thread that runs wasm, and spares: see instance_pool)."""
    try:
        return instantiate(instance_pre, store)
    except wasmtime.WasmtimeError as exc:
        if pool_exhausted(exc):
            raise SandboxBusy(
                "Every slot for a running module is taken; try again shortly."
            ) from None
        raise


def _directory(
    context: EngineContext, request: RunRequest, limits: Limits, state: RunState
) -> memfs.MemoryFileSystem | None:
    """The run's directory with its input files, charged to the budget (SandboxBusy when
    the budget cannot take them), or None for a run without one."""
    if request.files is None:
        return None
    fs = memfs.MemoryFileSystem(
        memfs.FsLimits(limits.files_quota_bytes, limits.files_max_entries),
        context.files_budget,
        clock=lambda: wasi_host.realtime_ns(state),
    )
    # A run starts only with room to write (MIN_ROOM, or its whole quota if smaller)
    # beyond its input: a spent budget refuses runs instead of starting them doomed.
    room = min(memfs.MIN_ROOM, limits.files_quota_bytes)
    if context.files_budget.available() < request.files_cost + room:
        raise FilesBudgetSpent("The server's room for run directories is spent; try again shortly.")
    try:
        fs.populate(request.files)
    except memfs.FsError as error:
        fs.release()
        if error.errno == memfs.NOSPC:
            raise FilesBudgetSpent(
                "The server's room for run directories is spent; try again shortly."
            ) from None
        raise SandboxError(
            f"the input files do not fit the run's directory (errno {error.errno})"
        ) from None
    state.files = FileTable(fs, request.stdin)
    return fs


def _declared_too_large(compiled: CompiledModule, limits: Limits) -> str | None:
    if compiled.min_memory_bytes > limits.memory_bytes:
        return (
            f"the module's minimum memory of {compiled.min_memory_bytes} bytes exceeds "
            f"the memory limit of {limits.memory_bytes} bytes"
        )
    if compiled.min_table_elements > MAX_TABLE_ELEMENTS:
        return (
            f"the module's minimum table size of {compiled.min_table_elements} elements "
            f"exceeds the limit of {MAX_TABLE_ELEMENTS}"
        )
    return None


def _classify(
    state: RunState, failure: Exception | None, limits: Limits, memory_bytes: int
) -> _Verdict:
    if state.stop_outcome is Outcome.TIMEOUT:
        return Outcome.TIMEOUT, None, _timeout_message(limits)
    if state.stop_outcome is not None:
        return state.stop_outcome, None, state.stop_reason
    if failure is None:
        return Outcome.SUCCESS, 0, None
    if isinstance(failure, wasmtime.ExitTrap):
        if failure.code == 0:
            return Outcome.SUCCESS, 0, None
        verdict: _Verdict = (Outcome.EXIT_NONZERO, failure.code, f"exited with code {failure.code}")
    elif isinstance(failure, wasmtime.Trap):
        code = failure.trap_code
        if code == wasmtime.TrapCode.INTERRUPT:
            return Outcome.TIMEOUT, None, _timeout_message(limits)
        if code == wasmtime.TrapCode.OUT_OF_FUEL:
            return Outcome.FUEL_EXHAUSTED, None, f"fuel budget of {limits.max_fuel} exhausted"
        if code == wasmtime.TrapCode.STACK_OVERFLOW:
            return Outcome.STACK_OVERFLOW, None, "stack overflow: call stack exhausted"
        verdict = (Outcome.TRAP, None, f"trap: {_describe(failure)}")
    else:
        verdict = (Outcome.TRAP, None, f"trap: {summarize(str(failure))}")
    if near_memory_limit(memory_bytes, limits.memory_bytes):
        _, exit_code, reason = verdict
        return (
            Outcome.MEMORY_LIMIT,
            exit_code,
            f"memory limit of {limits.memory_bytes} bytes reached ({reason})",
        )
    return verdict


def near_memory_limit(memory_bytes: int, limit: int) -> bool:
    """The memory-limit rule (see the module docstring)."""
    step = max(WASM_PAGE, limit // 16)
    return memory_bytes > 0 and limit - memory_bytes < step


def _timeout_message(limits: Limits) -> str:
    return f"execution timed out after {limits.timeout_seconds}s"


def _describe(trap: wasmtime.Trap) -> str:
    code = trap.trap_code
    if code is None:
        return summarize(trap.message)
    return _TRAP_DESCRIPTIONS.get(code, code.name.lower().replace("_", " "))


def _memory_size(store: wasmtime.Store, instance: wasmtime.Instance | None) -> int:
    if instance is None:
        return 0
    return memory_size(store, instance, "memory")


def _remaining_fuel(store: wasmtime.Store) -> int:
    try:
        return int(store.get_fuel())
    except wasmtime.WasmtimeError:
        return 0


def _result(
    compiled: CompiledModule,
    state: RunState,
    verdict: _Verdict,
    duration: float,
    fuel_consumed: int | None,
    memory_bytes: int,
    files: tuple[CollectedFile, ...] = (),
    files_truncated: bool = False,
) -> RunResult:
    outcome, exit_code, error = verdict
    return RunResult(
        files=files,
        files_truncated=files_truncated,
        outcome=outcome,
        exit_code=exit_code,
        stdout=bytes(state.stdout),
        stderr=bytes(state.stderr),
        stdout_truncated=state.stdout_truncated,
        stderr_truncated=state.stderr_truncated,
        duration_seconds=duration,
        fuel_consumed=fuel_consumed,
        memory_peak_bytes=memory_bytes,
        error=error,
        module_sha256=compiled.sha256,
        module_size=compiled.size,
    )
