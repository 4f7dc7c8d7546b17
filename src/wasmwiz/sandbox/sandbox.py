"""The `Sandbox`: validate, compile (cached) and run untrusted WASI modules within limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import wasmtime

from wasmwiz.sandbox.allocator import map_large_blocks
from wasmwiz.sandbox.cache import ModuleCache
from wasmwiz.sandbox.compile_account import CompileAccount, bind_account
from wasmwiz.sandbox.compile_pool import DEFAULT_COMMAND
from wasmwiz.sandbox.compiler import CompiledModule, Compiler, check_size, digest
from wasmwiz.sandbox.engine import EngineContext
from wasmwiz.sandbox.models import (
    CompileLimits,
    InspectionLimits,
    Limits,
    ModuleExport,
    ModuleImport,
    ModuleInterface,
    Outcome,
    RunRequest,
    RunResult,
    SandboxBusy,
    SandboxError,
    SandboxStats,
)
from wasmwiz.sandbox.runner import run_compiled
from wasmwiz.sandbox.stages import StageTimes, preparing, running
from wasmwiz.sandbox.workers import WorkerPool, on_worker_thread

_KINDS: tuple[tuple[type, str], ...] = (
    (wasmtime.FuncType, "func"),
    (wasmtime.MemoryType, "memory"),
    (wasmtime.TableType, "table"),
    (wasmtime.GlobalType, "global"),
)


def _kind(item_type: object) -> str:
    for cls, kind in _KINDS:
        if isinstance(item_type, cls):
            return kind
    return "other"


DEFAULT_LIMITS = Limits()  # frozen, so one shared instance is safe
DEFAULT_COMPILE_LIMITS = CompileLimits()
DEFAULT_INSPECTION = InspectionLimits()

_SELF_TEST_WAT = b"""
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "ok\\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 3))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
"""


class Sandbox:
    """Runs untrusted WASI preview 1 modules.

    Two wasmtime Engines are shared by every run, alike but for fuel metering: runs with a
    fuel budget (`Limits.max_fuel`) go to the metered one, all others to the unmetered
    one, which does not pay for counting fuel. Each run gets a fresh Store. A module is
    prepared for one engine, by the limits it will run under, and runs only under limits
    that need that engine (ValueError otherwise). Modules are compiled in separate worker
    processes (see compile_pool) and cached, apart for each engine, in memory and, given
    `cache_dir`, on disk, where artifacts are checked with a MAC under
    `cache_mac_key` (32 bytes: the caller's secret, never stored there). `prepare` and
    `run` block the calling thread; `run` executes wasm on the main thread or the
    sandbox's own big-stack threads only (on any other thread it hands the run to one and
    waits). `execute` does both on the sandbox's worker threads and is safe to await from
    an event loop.
    """

    def __init__(
        self,
        *,
        limits: Limits = DEFAULT_LIMITS,
        max_concurrency: int = 4,
        max_queue: int = 64,
        fair_queue: bool = True,
        max_module_bytes: int = 10 * 1024 * 1024,
        cache_max_bytes: int = 256 * 1024 * 1024,
        compile_limits: CompileLimits = DEFAULT_COMPILE_LIMITS,
        inspection: InspectionLimits = DEFAULT_INSPECTION,
        cache_dir: Path | None = None,
        disk_cache_max_bytes: int = 1024 * 1024 * 1024,
        cache_mac_key: bytes | None = None,
        extra_features: Iterable[str] = (),
        worker_command: Sequence[str] = DEFAULT_COMMAND,
        files_budget_bytes: int = 1024 * 1024 * 1024,
    ) -> None:
        self._limits = limits
        self._max_module_bytes = max_module_bytes
        # Run directories' memory goes back to the system when runs end (allocator.py).
        map_large_blocks()
        self._context = EngineContext(
            extra_features,
            files_budget_bytes,
            # Stores alive at once: one per worker thread, the main thread's (`run` runs
            # there inline) and the health check's own big-stack thread's.
            runs_at_once=max_concurrency + 2,
            max_module_bytes=max_module_bytes,
        )
        # What all runs' directories hold together (memfs.FilesBudget).
        self.files_budget = self._context.files_budget
        self._cache = ModuleCache(cache_max_bytes)
        try:
            self._compiler = Compiler(
                self._context,
                max_module_bytes=max_module_bytes,
                max_memory_bytes=limits.memory_bytes,
                inspection=inspection,
                compile_limits=compile_limits,
                cache_dir=cache_dir,
                disk_cache_max_bytes=disk_cache_max_bytes,
                cache_mac_key=cache_mac_key,
                worker_command=worker_command,
            )
            self._pool = WorkerPool(
                max_workers=max_concurrency, max_queue=max_queue, fair=fair_queue
            )
        except BaseException:
            self._context.close()
            raise

    def prepare(self, data: bytes | memoryview, limits: Limits | None = None) -> CompiledModule:
        """Validate and compile `data` (binary or text) for runs under `limits` (the
        sandbox's by default), cached by SHA-256 of `data` and the engine they need.

        Raises ModuleRefused when the module is unacceptable.
        """
        check_size(data, self._max_module_bytes)
        sha256 = digest(data)
        metered = (limits or self._limits).metered
        return self._cache.get_or_compile(
            (sha256, metered), lambda: self._compiler.compile(data, sha256, metered=metered)
        )

    def run(
        self, compiled: CompiledModule, request: RunRequest, limits: Limits | None = None
    ) -> RunResult:
        """Run a prepared module and wait for it. Guest failures are outcomes. `compiled`
        must have been prepared for `limits` (with or without a fuel budget)."""
        chosen = limits or self._limits
        if on_worker_thread() or threading.current_thread() is threading.main_thread():
            return run_compiled(self._context, compiled, request, chosen)
        # A thread of unknown stack size: deep guest recursion there could crash the
        # whole process instead of trapping, so the run moves to a thread we made.
        future = self._pool.submit(lambda: run_compiled(self._context, compiled, request, chosen))
        return future.result()

    async def execute(
        self,
        data: bytes | memoryview,
        request: RunRequest,
        limits: Limits | None = None,
        *,
        account: str = "",
        compile_account: CompileAccount | None = None,
        stages: StageTimes | None = None,
    ) -> RunResult:
        """Prepare and run on a worker thread; raises SandboxBusy at once when saturated.

        `account` is the fairness key: runs waiting for a worker, and compiles waiting
        for a compile worker, take turns across accounts. `compile_account`, given, is
        asked before a module is compiled (CompileBudgetExceeded) and charged after.
        `stages`, given, is filled with when each stage ran (sandbox.stages).
        """

        return await self._prepare_then_run(
            lambda: self.prepare(data, limits), request, limits, account, compile_account, stages
        )

    async def prepare_async(
        self,
        data: bytes | memoryview,
        limits: Limits | None = None,
        *,
        account: str = "",
        compile_account: CompileAccount | None = None,
        stages: StageTimes | None = None,
    ) -> CompiledModule:
        """`prepare` on a worker thread, as `execute` does, without running the module."""

        if stages is not None:
            stages.submitted_ns = time.time_ns()

        def job() -> CompiledModule:
            with bind_account(compile_account), preparing(stages):
                return self.prepare(data, limits)

        return await self._pool.submit_async(job, account)

    def prepare_stored(
        self, sha256: str, load: Callable[[], bytes], limits: Limits | None = None
    ) -> CompiledModule:
        """`prepare` for bytes kept elsewhere under their SHA-256: from the memory cache,
        the disk cache, or (only then) `load`ed, checked against the digest and compiled.
        Cached, the module's bytes are neither read nor hashed again."""
        metered = (limits or self._limits).metered
        return self._cache.get_or_compile(
            (sha256, metered),
            lambda: self._compiler.compile_stored(sha256, load, metered=metered),
        )

    async def prepare_stored_async(
        self,
        sha256: str,
        load: Callable[[], bytes],
        limits: Limits | None = None,
        *,
        account: str = "",
        compile_account: CompileAccount | None = None,
        stages: StageTimes | None = None,
    ) -> CompiledModule:
        """`prepare_stored` on a worker thread."""

        if stages is not None:
            stages.submitted_ns = time.time_ns()

        def job() -> CompiledModule:
            with bind_account(compile_account), preparing(stages):
                return self.prepare_stored(sha256, load, limits)

        return await self._pool.submit_async(job, account)

    async def execute_stored(
        self,
        sha256: str,
        load: Callable[[], bytes],
        request: RunRequest,
        limits: Limits | None = None,
        *,
        account: str = "",
        compile_account: CompileAccount | None = None,
        stages: StageTimes | None = None,
    ) -> RunResult:
        """`execute` for a module stored under `sha256` (`prepare_stored`)."""
        return await self._prepare_then_run(
            lambda: self.prepare_stored(sha256, load, limits),
            request,
            limits,
            account,
            compile_account,
            stages,
        )

    async def _prepare_then_run(
        self,
        prepare: Callable[[], CompiledModule],
        request: RunRequest,
        limits: Limits | None,
        account: str,
        compile_account: CompileAccount | None,
        stages: StageTimes | None,
    ) -> RunResult:
        if stages is not None:
            stages.submitted_ns = time.time_ns()

        def job() -> RunResult:
            with bind_account(compile_account), preparing(stages):
                compiled = prepare()
            with running(stages):
                return self.run(compiled, request, limits)

        return await self._pool.submit_async(job, account)

    async def run_async(
        self,
        compiled: CompiledModule,
        request: RunRequest,
        limits: Limits | None = None,
        *,
        account: str = "",
    ) -> RunResult:
        """`run` a prepared module on a worker thread (as `execute`, without preparing)."""
        return await self._pool.submit_async(lambda: self.run(compiled, request, limits), account)

    async def run_series(
        self,
        compiled: CompiledModule,
        take: Callable[[], tuple[int, RunRequest] | None],
        give_back: Callable[[int], None],
        limits: Limits | None = None,
        *,
        account: str = "",
        slice_seconds: float = 0.05,
    ) -> list[tuple[int, RunResult]]:
        """Run requests from `take` one after another on one worker thread, until `take`
        has none or `slice_seconds` have passed (a run is never cut short for it; the first
        always runs): many short runs for one hop to a worker and back.

        A request the server has no room for now (SandboxBusy: the files budget spent,
        every instance slot taken) did not run: its index goes to `give_back`, and the
        series ends there, with the runs before it, or with SandboxBusy if there were
        none. `take` and `give_back` are called on the worker thread."""

        def job() -> list[tuple[int, RunResult]]:
            done: list[tuple[int, RunResult]] = []
            until = time.monotonic() + slice_seconds
            while (not done or time.monotonic() < until) and (item := take()) is not None:
                index, request = item
                try:
                    done.append((index, self.run(compiled, request, limits)))
                except SandboxBusy:
                    give_back(index)
                    if not done:
                        raise
                    break
            return done

        return await self._pool.submit_async(job, account)

    @staticmethod
    def describe(compiled: CompiledModule) -> ModuleInterface:
        """What a compiled module imports and exports (from the compiled module: its
        bytes are not read again), and whether it is a WASI command."""
        wasm_module = compiled.wasm_module
        return ModuleInterface(
            imports=tuple(
                ModuleImport(item.module, item.name or "", _kind(item.type))
                for item in wasm_module.imports
            ),
            exports=tuple(
                ModuleExport(item.name, _kind(item.type)) for item in wasm_module.exports
            ),
        )

    def start_compile_workers(self) -> None:
        """Start the compile worker processes now rather than on the first compile.

        A service calls this at start-up; a worker takes a fraction of a second to start,
        which the first requests would otherwise wait for.
        """
        self._compiler.prestart_workers()

    @property
    def fingerprint(self) -> str:
        """What a run's result depends on besides its module, request and limits: the
        engines (options, features, wasmtime, machine), WasmWiz's version (its host calls)
        and the rules a module was accepted under. The service's result cache keys results
        by it (the limits say which engine ran); the disk cache keys each engine's
        artifacts by that engine's part of it."""
        return self._compiler.fingerprint

    def stats(self) -> SandboxStats:
        return SandboxStats(
            in_flight=self._pool.in_flight,
            queued=self._pool.queued,
            cache_entries=self._cache.entries,
            cache_bytes=self._cache.total_bytes,
            cache_hits=self._cache.hits,
            cache_misses=self._cache.misses,
            disk_cache_hits=self._compiler.disk_hits,
            compiles=self._compiler.compiles,
            compile_workers_replaced=self._compiler.workers_replaced,
            compile_worker_crashes=self._compiler.worker_crashes,
            compile_worker_crashes_by_signal=self._compiler.worker_crashes_by_signal,
            capacity=self._pool.max_workers,
        )

    def check(self) -> None:
        """Health self-test: compile and run a tiny module; raise SandboxError if broken."""
        limits = Limits(timeout_seconds=5)
        try:
            result = self.run(self.prepare(_SELF_TEST_WAT, limits), RunRequest(), limits)
        except Exception as exc:
            raise SandboxError(f"self-test failed: {exc}") from exc
        if result.outcome is not Outcome.SUCCESS or result.stdout != b"ok\n":
            raise SandboxError(f"self-test failed: {result.outcome} {result.error}")

    def close(self) -> None:
        """Wait for queued and in-flight runs, then stop the workers and the epoch ticker."""
        self._pool.close()
        self._compiler.close()
        self._context.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
