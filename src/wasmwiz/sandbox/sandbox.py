"""The `Sandbox`: validate, compile (cached) and run untrusted WASI modules within limits."""

from __future__ import annotations

import asyncio

from wasmwiz.sandbox.cache import ModuleCache
from wasmwiz.sandbox.compiler import CompiledModule, check_size, compile_module, digest
from wasmwiz.sandbox.engine import EngineContext
from wasmwiz.sandbox.models import (
    Limits,
    Outcome,
    RunRequest,
    RunResult,
    SandboxError,
    SandboxStats,
)
from wasmwiz.sandbox.runner import run_compiled
from wasmwiz.sandbox.workers import WorkerPool

DEFAULT_LIMITS = Limits()  # frozen, so one shared instance is safe

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

    One wasmtime Engine and Linker are shared by every run; each run gets a fresh Store.
    `prepare` and `run` block the calling thread, which needs a native stack of a few MiB
    (the main thread and default Linux threads have 8 MiB). `execute` does both on the
    sandbox's own worker threads and is safe to await from an event loop.
    """

    def __init__(
        self,
        *,
        limits: Limits = DEFAULT_LIMITS,
        max_concurrency: int = 4,
        max_queue: int = 64,
        max_module_bytes: int = 10 * 1024 * 1024,
        cache_max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self._limits = limits
        self._max_module_bytes = max_module_bytes
        self._context = EngineContext()
        self._cache = ModuleCache(cache_max_bytes)
        try:
            self._pool = WorkerPool(max_workers=max_concurrency, max_queue=max_queue)
        except BaseException:
            self._context.close()
            raise

    def prepare(self, data: bytes) -> CompiledModule:
        """Validate and compile `data` (binary or text), cached by SHA-256 of `data`.

        Raises ModuleRejected when the module is unacceptable.
        """
        check_size(data, self._max_module_bytes)
        sha256 = digest(data)
        return self._cache.get_or_compile(
            sha256,
            lambda: compile_module(self._context, data, sha256, self._max_module_bytes),
        )

    def run(
        self, compiled: CompiledModule, request: RunRequest, limits: Limits | None = None
    ) -> RunResult:
        """Run a prepared module on the calling thread. Guest failures are outcomes."""
        return run_compiled(self._context, compiled, request, limits or self._limits)

    async def execute(
        self, data: bytes, request: RunRequest, limits: Limits | None = None
    ) -> RunResult:
        """Prepare and run on a worker thread; raises SandboxBusy at once when saturated."""
        future = self._pool.submit(lambda: self.run(self.prepare(data), request, limits))
        return await asyncio.wrap_future(future)

    def stats(self) -> SandboxStats:
        return SandboxStats(
            in_flight=self._pool.in_flight,
            queued=self._pool.queued,
            cache_entries=self._cache.entries,
            cache_bytes=self._cache.total_bytes,
            cache_hits=self._cache.hits,
            cache_misses=self._cache.misses,
        )

    def check(self) -> None:
        """Health self-test: compile and run a tiny module; raise SandboxError if broken."""
        try:
            result = self.run(self.prepare(_SELF_TEST_WAT), RunRequest(), Limits(timeout_seconds=5))
        except Exception as exc:
            raise SandboxError(f"self-test failed: {exc}") from exc
        if result.outcome is not Outcome.SUCCESS or result.stdout != b"ok\n":
            raise SandboxError(f"self-test failed: {result.outcome} {result.error}")

    def close(self) -> None:
        """Wait for queued and in-flight runs, then stop the workers and the epoch ticker."""
        self._pool.close()
        self._context.close()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
