"""Check and compile submitted bytes into a `CompiledModule` ready to instantiate.

The path of a module the process has not seen (`Sandbox.prepare` has checked its size and
digested it): the refusals remembered by digest, the disk cache, a look at the 8-byte
header, then a compile worker process, which does everything whose cost grows with the
module (text conversion, the pre-compile inspection, wasmtime's validator, compilation)
under its CPU and memory limits. Its artifact, given a cache directory, is stored on disk
and loaded from there. A module that overran a compile limit is remembered by its digest
and engine, and refused at once next time; an overrun on the unmetered engine refuses it
on both (metering only adds code to compile), one on the metered engine on that engine
alone. A worker crash is not a verdict and is not remembered.

Every module is compiled for one of the two engines (engine.py), the fuel-metered one or
the unmetered one, and only ever runs on it: the compile request names it, and the disk
cache keeps each engine's artifacts under that engine's own fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import wasmtime

from wasmwiz import __version__
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox import validation
from wasmwiz.sandbox.artifacts import ArtifactMeta, ArtifactStore
from wasmwiz.sandbox.compile_pool import DEFAULT_COMMAND, CompilePool
from wasmwiz.sandbox.compile_protocol import WorkerRules
from wasmwiz.sandbox.engine import (
    DEFAULT_FEATURES,
    MAX_TABLE_ELEMENTS,
    EngineContext,
    WasmEngine,
    config_fingerprint,
)
from wasmwiz.sandbox.models import CompileLimits, InspectionLimits, ModuleRefused, SandboxError
from wasmwiz.sandbox.stages import Prepared, note_prepared
from wasmwiz.sandbox.validation import check_size as check_size
from wasmwiz.sandbox.wasm_reader import HEADER_SIZE

# Python objects and wasmtime's own bookkeeping per cached module, on top of the artifact.
COST_OVERHEAD = 16 * 1024
_REMEMBERED_REFUSALS = 10_000
_COMPILE_LIMIT_CODES = frozenset({ProblemCode.COMPILE_TIMEOUT, ProblemCode.COMPILE_MEMORY_LIMIT})


@dataclass(frozen=True, slots=True)
class CompiledModule:
    """An opaque handle on a validated, compiled WasmModule; `sha256`, `size` and `metered`
    are public.

    `sha256` is the digest of the bytes as submitted (text or binary); `size` is the
    length of the binary that was compiled; `metered`: compiled for the fuel-metered
    engine, so it runs only with a fuel budget (and without one otherwise).
    """

    sha256: str
    size: int
    metered: bool
    min_memory_bytes: int = field(repr=False)
    min_table_elements: int = field(repr=False)
    artifact_bytes: int = field(repr=False)
    wasm_module: Any = field(repr=False, compare=False)
    instance_pre: Any = field(repr=False, compare=False)
    # The module linked for runs with files, made on the first such run (see runner).
    files_instance_pre: list[Any] = field(default_factory=list, repr=False, compare=False)

    @property
    def cost(self) -> int:
        return self.artifact_bytes + COST_OVERHEAD


def _cache_fingerprint(
    max_module_bytes: int,
    max_memory_bytes: int,
    inspection: InspectionLimits,
    features: frozenset[str],
    *,
    metered: bool,
    version: str = __version__,
    rules_version: int = validation.RULES_VERSION,
) -> str:
    """The disk cache's key beyond the module: the engine, and what the checks accepted.

    A disk hit skips every check that ran before the module was compiled, so an artifact
    is only reused under the same acceptance rules and for the engine it was compiled
    for: the engine (options, fuel metering among them, features, wasmtime, machine),
    WasmWiz's version, and the digest of its validation rules (the limits, the inspection
    bounds, the feature set, the rules' own version). After any of them changes, every
    module is checked (and compiled) again rather than loaded past a rule it would now
    break.
    """
    accepted_under = json.dumps(
        {
            "engine": config_fingerprint(features - DEFAULT_FEATURES, metered=metered),
            "wasmwiz": version,
            "rules": validation.rules_digest(
                inspection,
                features,
                max_module_bytes=max_module_bytes,
                max_memory_bytes=max_memory_bytes,
                max_table_elements=MAX_TABLE_ELEMENTS,
                rules_version=rules_version,
            ),
        },
        sort_keys=True,
    )
    return hashlib.sha256(accepted_under.encode()).hexdigest()[:32]


def digest(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


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
        cache_mac_key: bytes | None = None,
        worker_command: Sequence[str] = DEFAULT_COMMAND,
    ) -> None:
        self._context = context
        self._max_module_bytes = max_module_bytes
        self._max_memory_bytes = max_memory_bytes
        self._inspection = inspection
        # Each engine's artifacts under its own fingerprint (a directory of the disk cache).
        fingerprints = {
            metered: _cache_fingerprint(
                max_module_bytes, max_memory_bytes, inspection, context.features, metered=metered
            )
            for metered in (False, True)
        }
        self.fingerprint = hashlib.sha256(
            json.dumps(sorted(fingerprints.values())).encode()
        ).hexdigest()[:32]
        self._stores: dict[bool, ArtifactStore] = {}
        if cache_dir is not None:
            key = _required(cache_mac_key)
            try:
                for metered, fingerprint in fingerprints.items():
                    self._stores[metered] = ArtifactStore(
                        cache_dir, disk_cache_max_bytes, fingerprint, mac_key=key
                    )
            except BaseException:
                for store in self._stores.values():
                    store.close()
                raise
        rules = WorkerRules(
            address_space_bytes=compile_limits.memory_bytes,
            max_module_bytes=max_module_bytes,
            max_memory_bytes=max_memory_bytes,
            max_table_elements=MAX_TABLE_ELEMENTS,
            inspection=inspection,
            extra_features=context.extra_features,
        )
        self._pool = CompilePool(compile_limits, rules, command=worker_command)
        self._refused: OrderedDict[tuple[str, bool], ModuleRefused] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def compiles(self) -> int:
        return self._pool.compiles

    @property
    def workers_replaced(self) -> int:
        return self._pool.replaced

    @property
    def worker_crashes(self) -> int:
        return self._pool.crashes

    @property
    def worker_crashes_by_signal(self) -> dict[str, int]:
        return self._pool.crash_counts()

    @property
    def disk_hits(self) -> int:
        return sum(store.hits for store in self._stores.values())

    def compile(self, data: bytes | memoryview, sha256: str, *, metered: bool) -> CompiledModule:
        """Run every check and compile (or load from disk) for the metered or the unmetered
        engine. Raises ModuleRefused."""
        return self._compile(sha256, lambda: data, metered)

    def compile_stored(
        self, sha256: str, load: Callable[[], bytes], *, metered: bool
    ) -> CompiledModule:
        """As `compile`, for bytes kept elsewhere under their digest `sha256`: `load` is
        called only when the disk cache does not hold the module. Bytes that are not what
        their digest says are a fault of the store, not a refusal (SandboxError)."""

        def loaded() -> bytes:
            data = load()
            if digest(data) != sha256:
                raise SandboxError(f"the stored bytes of {sha256} do not match their digest")
            check_size(data, self._max_module_bytes)
            return data

        return self._compile(sha256, loaded, metered)

    def _compile(
        self, sha256: str, source: Callable[[], bytes | memoryview], metered: bool
    ) -> CompiledModule:
        with self._lock:
            refused = self._refused.get((sha256, metered))
            if refused is None and metered:
                # Over a limit without metering is over it with metering too: a module
                # costs one compile past its limit, not one per engine.
                refused = self._refused.get((sha256, False))
        if refused is not None:
            raise ModuleRefused(refused.code, refused.message)
        engine = self._context.engine_for(metered)
        store = self._stores.get(metered)
        if store is not None:
            loaded = store.load(engine.engine, sha256)
            if loaded is not None:
                note_prepared(Prepared.DISK)
                return self._finish(
                    sha256, engine, loaded.meta, loaded.wasm_module, loaded.artifact_bytes
                )
        data = source()
        # The header alone, copied: `data` may be a view of the request's buffer.
        validation.check_header(bytes(data[:HEADER_SIZE]))
        try:
            output = self._pool.compile(data, metered=metered)
        except ModuleRefused as exc:
            if exc.code in _COMPILE_LIMIT_CODES:
                self._remember((sha256, metered), exc)
            raise
        meta, artifact = output.meta, output.artifact
        if store is not None:
            wasm_module = store.save(engine.engine, sha256, artifact, meta)
        else:
            wasm_module = wasmtime.Module.deserialize(engine.engine, artifact)
        return self._finish(sha256, engine, meta, wasm_module, len(artifact))

    def _finish(
        self,
        sha256: str,
        engine: WasmEngine,
        meta: ArtifactMeta,
        wasm_module: wasmtime.Module,
        artifact_bytes: int,
    ) -> CompiledModule:
        try:
            # Resolving imports once per module and process, not per run.
            instance_pre = engine.linker.instantiate_pre(wasm_module)
        except wasmtime.WasmtimeError as exc:
            # The inspection accepted every import's name: this is a signature mismatch.
            raise ModuleRefused(
                ProblemCode.UNSUPPORTED_IMPORT, validation.summarize(str(exc))
            ) from None
        return CompiledModule(
            sha256=sha256,
            size=meta.size,
            metered=engine.metered,
            min_memory_bytes=meta.min_memory_bytes,
            min_table_elements=meta.min_table_elements,
            artifact_bytes=artifact_bytes,
            wasm_module=wasm_module,
            instance_pre=instance_pre,
        )

    def _remember(self, key: tuple[str, bool], refusal: ModuleRefused) -> None:
        with self._lock:
            self._refused[key] = refusal
            while len(self._refused) > _REMEMBERED_REFUSALS:
                self._refused.popitem(last=False)

    def prestart_workers(self) -> None:
        self._pool.prestart()

    def close(self) -> None:
        self._pool.close()
        for store in self._stores.values():
            store.close()


def _required(cache_mac_key: bytes | None) -> bytes:
    if cache_mac_key is None:
        raise ValueError("a disk cache (cache_dir) needs a MAC key (cache_mac_key)")
    return cache_mac_key
