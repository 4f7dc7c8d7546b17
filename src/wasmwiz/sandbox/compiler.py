"""Validate and compile submitted bytes into a `CompiledModule` ready to instantiate.

The path of a module the process has not seen (`Sandbox.prepare` has checked its size and
digested it): the refusals remembered by digest, the disk cache, the text conversion and
size of the binary, the pre-compile inspection (validation.inspect), wasmtime's validator
(in process: it is linear and quick), then compilation in a worker process, whose
artifact, given a cache directory, is stored on disk and loaded from there. A module that
overran a compile limit is remembered by its digest and refused at once next time.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

from wasmwiz.sandbox import validation
from wasmwiz.sandbox.artifacts import ArtifactMeta, ArtifactStore
from wasmwiz.sandbox.compile_pool import CompilePool, CompileRefused
from wasmwiz.sandbox.engine import MAX_TABLE_ELEMENTS, EngineContext, config_fingerprint
from wasmwiz.sandbox.models import CompileLimits, InspectionLimits, ModuleRejected

# Python objects and wasmtime's own bookkeeping per cached module, on top of the artifact.
COST_OVERHEAD = 16 * 1024
_REMEMBERED_REFUSALS = 10_000
_COMPILE_LIMIT_CODES = frozenset({"compile_timeout", "compile_memory_limit"})


@dataclass(frozen=True, slots=True)
class CompiledModule:
    """An opaque handle on a validated, compiled WasmModule; `sha256` and `size` are public.

    `sha256` is the digest of the bytes as submitted (text or binary); `size` is the
    length of the binary that was compiled.
    """

    sha256: str
    size: int
    min_memory_bytes: int = field(repr=False)
    min_table_elements: int = field(repr=False)
    artifact_bytes: int = field(repr=False)
    wasm_module: Any = field(repr=False, compare=False)
    instance_pre: Any = field(repr=False, compare=False)

    @property
    def cost(self) -> int:
        return self.artifact_bytes + COST_OVERHEAD


def _cache_fingerprint(
    max_module_bytes: int, max_memory_bytes: int, inspection: InspectionLimits
) -> str:
    """The disk cache's key beyond the module: the engine, and what the checks accepted.

    A disk hit skips the checks that ran before the module was compiled, so an artifact
    is only reused under the same acceptance rules; after MAX_WASM_SIZE, MEMORY_LIMIT or
    an inspection limit changes, every module is checked (and compiled) again rather
    than loaded past a rule it would now break.
    """
    accepted_under = json.dumps(
        {
            "engine": config_fingerprint(),
            "max_module_bytes": max_module_bytes,
            "max_memory_bytes": max_memory_bytes,
            "inspection": dataclasses.asdict(inspection),
        },
        sort_keys=True,
    )
    return hashlib.sha256(accepted_under.encode()).hexdigest()[:32]


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_size(data: bytes, max_module_bytes: int) -> None:
    if not data:
        raise ModuleRejected("empty_wasm", "the module is empty")
    if len(data) > max_module_bytes:
        raise ModuleRejected(
            "wasm_too_large",
            f"the module is {len(data)} bytes; the limit is {max_module_bytes} bytes",
        )


class Compiler:
    """Turns bytes into CompiledModules; owns the compile workers and the disk cache."""

    def __init__(
        self,
        context: EngineContext,
        *,
        max_module_bytes: int,
        max_memory_bytes: int,
        inspection: InspectionLimits,
        compile_limits: CompileLimits,
        cache_dir: Path | None,
        disk_cache_max_bytes: int,
    ) -> None:
        self._context = context
        self._max_module_bytes = max_module_bytes
        self._max_memory_bytes = max_memory_bytes
        self._inspection = inspection
        self._store = (
            ArtifactStore(
                cache_dir,
                disk_cache_max_bytes,
                _cache_fingerprint(max_module_bytes, max_memory_bytes, inspection),
            )
            if cache_dir is not None
            else None
        )
        self._pool = CompilePool(compile_limits)
        self._refused: OrderedDict[str, ModuleRejected] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def compiles(self) -> int:
        return self._pool.compiles

    @property
    def workers_replaced(self) -> int:
        return self._pool.replaced

    @property
    def disk_hits(self) -> int:
        return self._store.hits if self._store is not None else 0

    def compile(self, data: bytes, sha256: str) -> CompiledModule:
        """Run every check and compile (or load from disk). Raises ModuleRejected."""
        with self._lock:
            refused = self._refused.get(sha256)
        if refused is not None:
            raise ModuleRejected(refused.code, refused.message)
        engine = self._context.engine
        if self._store is not None:
            loaded = self._store.load(engine, sha256)
            if loaded is not None:
                return self._finish(sha256, loaded.meta, loaded.wasm_module, loaded.artifact_bytes)
        binary = validation.to_binary(data)
        check_size(binary, self._max_module_bytes)
        info = validation.inspect(
            binary,
            self._inspection,
            max_memory_bytes=self._max_memory_bytes,
            max_table_elements=MAX_TABLE_ELEMENTS,
        )
        try:
            wasmtime.Module.validate(engine, binary)
        except wasmtime.WasmtimeError as exc:
            raise validation.compile_error_message(str(exc)) from None
        try:
            artifact = self._pool.compile(binary)
        except CompileRefused as exc:
            raise validation.compile_error_message(str(exc)) from None
        except ModuleRejected as exc:
            if exc.code in _COMPILE_LIMIT_CODES:
                self._remember(sha256, exc)
            raise
        meta = ArtifactMeta(
            size=len(binary),
            min_memory_bytes=info.min_memory_bytes,
            min_table_elements=max(info.table_min_elements, default=0),
        )
        if self._store is not None:
            wasm_module = self._store.save(engine, sha256, artifact, meta)
        else:
            wasm_module = wasmtime.Module.deserialize(engine, artifact)
        return self._finish(sha256, meta, wasm_module, len(artifact))

    def _finish(
        self, sha256: str, meta: ArtifactMeta, wasm_module: wasmtime.Module, artifact_bytes: int
    ) -> CompiledModule:
        try:
            # Resolving imports once per module and process, not per run.
            instance_pre = self._context.linker.instantiate_pre(wasm_module)
        except wasmtime.WasmtimeError as exc:
            # The inspection accepted every import's name: this is a signature mismatch.
            raise ModuleRejected("unsupported_import", validation.summarize(str(exc))) from None
        return CompiledModule(
            sha256=sha256,
            size=meta.size,
            min_memory_bytes=meta.min_memory_bytes,
            min_table_elements=meta.min_table_elements,
            artifact_bytes=artifact_bytes,
            wasm_module=wasm_module,
            instance_pre=instance_pre,
        )

    def _remember(self, sha256: str, refusal: ModuleRejected) -> None:
        with self._lock:
            self._refused[sha256] = refusal
            while len(self._refused) > _REMEMBERED_REFUSALS:
                self._refused.popitem(last=False)

    def prestart_workers(self) -> None:
        self._pool.prestart()

    def close(self) -> None:
        self._pool.close()
