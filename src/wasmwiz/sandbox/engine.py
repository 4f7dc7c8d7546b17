"""The shared wasmtime Engines and Linkers, the epoch ticker, and per-run Store setup.

Two Engines, alike but for fuel metering: a run with a fuel budget (`Limits.metered`) runs
on the metered one, every other run on the unmetered one, which does not pay for counting
fuel (about a fifth of the guest's time) and is stopped by the epoch deadline alone. Code
compiled for one Engine cannot run on the other: each compiled module belongs to one
(`CompiledModule.metered`), and every cache keys modules by it.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import logging
import math
import platform
import resource
import threading
import time
from collections.abc import Iterable
from typing import Any

import wasmtime

from wasmwiz.sandbox import memfs, wasi_files, wasi_host
from wasmwiz.sandbox.models import Limits, RunRequest
from wasmwiz.sandbox.wasmtime_ffi import (
    InstancePool,
    get_export,
    set_stdin_bytes,
    use_instance_pool,
)

__all__ = [
    "DEFAULT_FEATURES",
    "ENGINE_OPTIONS",
    "MAX_TABLES",
    "MAX_TABLE_ELEMENTS",
    "MAX_WASM_STACK",
    "OPTIONAL_FEATURES",
    "PROPOSALS",
    "EngineContext",
    "WasmEngine",
    "config_fingerprint",
    "enabled_features",
    "engine_config",
    "engine_options",
    "get_export",
]

EPOCH_TICK_SECONDS = 0.01
# wasmtime aborts the whole process at Engine creation above 2 MiB; our worker threads
# have 8 MiB of native stack, so 1 MiB of wasm stack leaves ample room for host calls.
MAX_WASM_STACK = 1024 * 1024
MAX_TABLES = 4
MAX_TABLE_ELEMENTS = 100_000  # tables are outside memory_size; unbounded they exhaust the host
MAX_INSTANCES = 1
# A run's memory may grow to its store's limit (Limits.memory_bytes); each slot of the
# instance pool has room for the whole 32-bit space, so the pool is never a second limit.
POOL_MEMORY_BYTES = 4 * 1024 * 1024 * 1024
# What of a memory stays mapped, zeroed, when its run ends: a small module's whole memory,
# which the next run then finds without a page fault.
POOL_KEEP_RESIDENT_BYTES = 64 * 1024
# Slots besides the sandbox's threads and the main thread: a Store the garbage collector
# has not yet freed still holds its slot.
POOL_SPARE_SLOTS = 4
# What else the process may map beside its engines' pools, under an address-space limit.
_PROCESS_ADDRESS_SPACE = 8 * 1024 * 1024 * 1024

logger = logging.getLogger(__name__)

# Every WebAssembly proposal wasmtime-py can switch, by its name in wasmtime's
# stability tiers (docs.wasmtime.dev/stability-tiers.html), with the Config options that
# switch it. Each is set explicitly, on or off: nothing is left to wasmtime's defaults,
# which change between releases.
PROPOSALS: dict[str, tuple[str, ...]] = {
    "simd": ("wasm_simd",),
    "relaxed-simd": ("wasm_relaxed_simd",),
    "bulk-memory": ("wasm_bulk_memory",),
    "reference-types": ("wasm_reference_types",),
    "multi-value": ("wasm_multi_value",),
    "tail-call": ("wasm_tail_call",),
    "multi-memory": ("wasm_multi_memory",),
    "memory64": ("wasm_memory64",),
    "threads": ("wasm_threads", "shared_memory"),
    "exceptions": ("wasm_exceptions",),
    "function-references": ("wasm_function_references",),
    "wide-arithmetic": ("wasm_wide_arithmetic",),
    "custom-page-sizes": ("wasm_custom_page_sizes",),
    "gc": ("wasm_gc",),
    "stack-switching": ("wasm_stack_switching",),
    "component-model": ("wasm_component_model",),
}
# On by default: the Tier 1 proposals a WASI preview 1 command module can use.
# multi-memory and memory64 are Tier 1 too but stay off: preview 1 is defined over one
# 32-bit memory exported as "memory", and each store allows one memory. (Always on and
# not switchable: mutable-globals, sign-extension-ops, nontrapping-fptoint,
# extended-const.) docs/security.md says why exceptions are not among them.
DEFAULT_FEATURES = frozenset(
    {"simd", "relaxed-simd", "bulk-memory", "reference-types", "multi-value", "tail-call"}
)
# What a deployment may add (WASM_EXTRA_FEATURES): Tier 2 proposals that need nothing
# the sandbox's limits and WASI preview 1 do not give. Threads (shared memories escape
# the store's limits), gc, stack switching and the component model are never on.
OPTIONAL_FEATURES = frozenset(
    {"exceptions", "function-references", "wide-arithmetic", "custom-page-sizes"}
)


def enabled_features(extra: Iterable[str] = ()) -> frozenset[str]:
    """The default proposals plus `extra`, each of which must be in OPTIONAL_FEATURES."""
    extra = frozenset(extra)
    unknown = extra - OPTIONAL_FEATURES
    if unknown:
        raise ValueError(
            f"unknown or unsupported optional features {sorted(unknown)}; "
            f"choose from {sorted(OPTIONAL_FEATURES)}"
        )
    return DEFAULT_FEATURES | extra


def engine_options(extra: Iterable[str] = (), *, metered: bool) -> dict[str, bool | int]:
    """Every Config option an engine sets, in one place: the compile workers build the
    same Engine from it, and the disk cache keys artifacts by its fingerprint. `metered`:
    the engine counts fuel (for runs with a fuel budget)."""
    features = enabled_features(extra)
    options: dict[str, bool | int] = {
        "epoch_interruption": True,
        "consume_fuel": metered,
        "max_wasm_stack": MAX_WASM_STACK,
        # externref (reference-types) needs the GC heap; the GC proposal stays off.
        "gc_support": True,
        # Relaxed SIMD gives the same answers on every machine, as deterministic runs
        # promise; the few instructions that differ by CPU take their portable form.
        "wasm_relaxed_simd_deterministic": True,
    }
    for name, switches in PROPOSALS.items():
        for switch in switches:
            options[switch] = name in features
    return options


# The unmetered engine's, which most runs use, for tests and tools.
ENGINE_OPTIONS = engine_options(metered=False)


def engine_config(extra: Iterable[str] = (), *, metered: bool) -> wasmtime.Config:
    config = wasmtime.Config()
    for name, value in engine_options(extra, metered=metered).items():
        setattr(config, name, value)
    return config


def config_fingerprint(extra: Iterable[str] = (), *, metered: bool) -> str:
    """Identifies what a serialized artifact was compiled for: options, wasmtime, machine."""
    described = json.dumps(
        {
            "options": engine_options(extra, metered=metered),
            "wasmtime": importlib.metadata.version("wasmtime"),
            "machine": platform.machine(),
            "system": platform.system(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(described.encode()).hexdigest()[:32]


class WasmEngine:
    """One wasmtime Engine with its two Linkers: WASI with our shadowing host functions,
    and the same with every file call served from memory (runs with a directory)."""

    def __init__(
        self, extra_features: Iterable[str], *, metered: bool, pool: InstancePool | None = None
    ) -> None:
        self.metered = metered
        config = engine_config(extra_features, metered=metered)
        if pool is not None:
            # Not part of engine_config: the compile workers only compile, and what the
            # engine compiles does not depend on where its instances will live.
            use_instance_pool(config, pool)
        self.engine = wasmtime.Engine(config)
        self.linker = wasmtime.Linker(self.engine)
        self.linker.allow_shadowing = True
        self.linker.define_wasi()
        self._host_functions = wasi_host.install(self.linker)
        self.files_linker = wasmtime.Linker(self.engine)
        self.files_linker.allow_shadowing = True
        self.files_linker.define_wasi()
        self._host_functions += wasi_host.install(self.files_linker)
        self._host_functions += wasi_files.install(self.files_linker)

    def files_instance_pre(self, compiled: Any) -> Any:
        """`compiled` linked against files_linker, made once (two racing threads may both
        make it; either result serves)."""
        holder: list[Any] = compiled.files_instance_pre
        if not holder:
            holder.append(self.files_linker.instantiate_pre(compiled.wasm_module))
        return holder[0]

    def new_store(self, request: RunRequest, limits: Limits, deadline_ticks: int) -> wasmtime.Store:
        """A fresh Store, fully armed: WASI, limits, the fuel budget if metered, and an
        epoch deadline `deadline_ticks` from now."""
        store = wasmtime.Store(self.engine)
        # A WASI call in a store without WASI aborts the process: always set it.
        store.set_wasi(_wasi_config(request))
        store.set_limits(
            memory_size=limits.memory_bytes,
            memories=1,
            tables=MAX_TABLES,
            table_elements=MAX_TABLE_ELEMENTS,
            instances=MAX_INSTANCES,
        )
        if self.metered:  # a metered store without fuel traps at once
            assert limits.max_fuel is not None
            store.set_fuel(limits.max_fuel)
        store.set_epoch_deadline(deadline_ticks)
        return store


def instance_pool(runs_at_once: int, max_module_bytes: int) -> InstancePool:
    """Slots for `runs_at_once` runs (and POOL_SPARE_SLOTS) of modules up to
    `max_module_bytes`, each with everything a run's store allows (set_limits in
    WasmEngine.new_store).

    wasmtime's pooling allocator reserves the slots' address space when the engine is
    made (about 8 GiB per slot: a memory and a GC heap, each with its guard pages) and
    keeps them mapped between runs, so a run does not map and unmap its memory and
    tables. An instance's own state (its globals and function references) is bounded by
    the module's size: a global takes 16 bytes there and at least 5 in the module.
    """
    return InstancePool(
        instances=runs_at_once + POOL_SPARE_SLOTS,
        # The memory, and the GC heap a store with references makes (it takes a memory).
        memories_per_instance=2,
        memory_bytes=POOL_MEMORY_BYTES,
        tables_per_instance=MAX_TABLES,
        table_elements=MAX_TABLE_ELEMENTS,
        instance_bytes=max(64 * 1024 * 1024, 8 * max_module_bytes),
        keep_resident_bytes=POOL_KEEP_RESIDENT_BYTES,
    )


def pool_address_space(pool: InstancePool) -> int:
    """About what one engine's pool reserves of the address space: per slot its memories
    with their guard regions (wasmtime's 32 MiB before and after), its tables and its
    instance's own state (measured: 86.6 GB for 10 slots of 4 GiB memories)."""
    guarded_memory = pool.memory_bytes + 64 * 1024 * 1024
    tables = pool.tables_per_instance * pool.table_elements * 16
    per_slot = pool.memories_per_instance * guarded_memory + tables + pool.instance_bytes
    return pool.instances * per_slot


def _pool_fits_address_space_limit(pool: InstancePool, engines: int) -> bool:
    """Whether `engines` pools fit under the process's RLIMIT_AS, with room for the rest.

    wasmtime cannot report a pool it failed to map: Engine creation aborts the process
    (a panic in its C API), so the limit is checked first."""
    limit, _ = resource.getrlimit(resource.RLIMIT_AS)
    if limit == resource.RLIM_INFINITY:
        return True
    needed = engines * pool_address_space(pool) + _PROCESS_ADDRESS_SPACE
    if needed <= limit:
        return True
    logger.warning(
        "the process's address-space limit (RLIMIT_AS, %d bytes) is below what the "
        "instance pools reserve (about %d bytes): runs map their memory each time "
        "instead (slower); lift the limit (ulimit -v) or lower MAX_CONCURRENT_EXECUTIONS",
        limit,
        needed,
    )
    return False


class EngineContext:
    """The metered and the unmetered WasmEngine, and one epoch ticker for both.

    Given `runs_at_once`, each engine takes its runs' instances from a pool with slots for
    that many runs and POOL_SPARE_SLOTS more (instance_pool); a run that finds them all
    taken is SandboxBusy (runner).
    Under an address-space limit too low for the pools, runs map their memory each time,
    as without `runs_at_once`.
    """

    def __init__(
        self,
        extra_features: Iterable[str] = (),
        files_budget_bytes: int = 1024 * 1024 * 1024,
        *,
        runs_at_once: int | None = None,
        max_module_bytes: int = 10 * 1024 * 1024,
    ) -> None:
        self.files_budget = memfs.FilesBudget(files_budget_bytes)
        self.extra_features = frozenset(extra_features)
        self.features = enabled_features(self.extra_features)
        pool = None if runs_at_once is None else instance_pool(runs_at_once, max_module_bytes)
        if pool is not None and not _pool_fits_address_space_limit(pool, engines=2):
            pool = None
        self.unmetered = WasmEngine(self.extra_features, metered=False, pool=pool)
        self.metered = WasmEngine(self.extra_features, metered=True, pool=pool)
        self._stopped = threading.Event()
        # The epoch is due to advance once per tick from here; `_ticks_applied` is how
        # often it has. The ticker needs the GIL, so under load it runs late, then
        # catches up in a burst.
        self._epoch_started = time.monotonic()
        self._ticks_applied = 0
        self._ticker = threading.Thread(target=self._tick, name="wasmwiz-epoch", daemon=True)
        self._ticker.start()

    def engine_for(self, metered: bool) -> WasmEngine:
        return self.metered if metered else self.unmetered

    def _tick(self) -> None:
        # Scheduled against the monotonic clock, so a late wake-up catches up with the
        # missed ticks and the epoch keeps tracking wall time under load.
        engines = (self.unmetered.engine, self.metered.engine)
        next_tick = self._epoch_started + EPOCH_TICK_SECONDS
        while not self._stopped.wait(max(0.0, next_tick - time.monotonic())):
            now = time.monotonic()
            while next_tick <= now:
                for engine in engines:
                    engine.increment_epoch()
                self._ticks_applied += 1
                next_tick += EPOCH_TICK_SECONDS

    def ticks_behind(self) -> int:
        """Ticks that are due but not yet applied: the catch-up burst still to come."""
        due = int((time.monotonic() - self._epoch_started) / EPOCH_TICK_SECONDS)
        return max(0, due - self._ticks_applied)

    def epoch_deadline_ticks(self, timeout_seconds: float) -> int:
        """Ticks from now until a store armed now must be interrupted.

        One spare tick: the next tick may come at once, and poll_oneoff's exact deadline
        should normally be the one that fires for sleeping guests. Plus the ticks the
        ticker owes: counted from a lagging epoch, its catch-up burst would otherwise
        stop the guest that much before its time.
        """
        return math.ceil(timeout_seconds / EPOCH_TICK_SECONDS) + 1 + self.ticks_behind()

    def close(self) -> None:
        self._stopped.set()
        self._ticker.join()


def _wasi_config(request: RunRequest) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.argv = [request.program_name, *request.args]
    if request.env:  # a new config's environment is already empty: no call to make
        wasi.env = [list(pair) for pair in request.env]
    set_stdin_bytes(wasi, request.stdin)
    return wasi
