"""The shared wasmtime Engine and Linker, the epoch ticker, and per-run Store setup."""

from __future__ import annotations

import ctypes
import hashlib
import importlib.metadata
import json
import math
import platform
import threading
import time
from typing import Any

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._extern import wrap_extern

from wasmwiz.sandbox import wasi_host
from wasmwiz.sandbox.models import Limits, RunRequest

EPOCH_TICK_SECONDS = 0.01
# wasmtime aborts the whole process at Engine creation above 2 MiB; our worker threads
# have 8 MiB of native stack, so 1 MiB of wasm stack leaves ample room for host calls.
MAX_WASM_STACK = 1024 * 1024
MAX_TABLES = 4
MAX_TABLE_ELEMENTS = 100_000  # tables are outside memory_size; unbounded they exhaust the host
MAX_INSTANCES = 1
UNLIMITED_FUEL = 2**64 - 1


# Every Config option the engine sets, in one place: the compile workers build the same
# Engine from it, and the disk cache keys artifacts by its fingerprint.
ENGINE_OPTIONS: dict[str, bool | int] = {
    "epoch_interruption": True,
    "consume_fuel": True,
    "max_wasm_stack": MAX_WASM_STACK,
    # WASI command modules need none of these, and refusing them at compile time gives
    # clear errors instead of surprises (shared memories, 64-bit memories, GC heaps).
    "wasm_threads": False,
    "shared_memory": False,
    "wasm_memory64": False,
    "wasm_multi_memory": False,
    "wasm_gc": False,
    "wasm_simd": True,
    "wasm_bulk_memory": True,
    "wasm_reference_types": True,
    "wasm_multi_value": True,
    "wasm_tail_call": True,
    "wasm_exceptions": True,
}


def engine_config() -> wasmtime.Config:
    config = wasmtime.Config()
    for name, value in ENGINE_OPTIONS.items():
        setattr(config, name, value)
    return config


def config_fingerprint() -> str:
    """Identifies what a serialized artifact was compiled for: options, wasmtime, machine."""
    described = json.dumps(
        {
            "options": ENGINE_OPTIONS,
            "wasmtime": importlib.metadata.version("wasmtime"),
            "machine": platform.machine(),
            "system": platform.system(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(described.encode()).hexdigest()[:32]


class EngineContext:
    """One Engine, one Linker with WASI (and our shadowing host functions), one ticker."""

    def __init__(self) -> None:
        self.engine = wasmtime.Engine(engine_config())
        self.linker = wasmtime.Linker(self.engine)
        self.linker.allow_shadowing = True
        self.linker.define_wasi()
        self._host_functions = wasi_host.install(self.linker)
        self._stopped = threading.Event()
        # The epoch is due to advance once per tick from here; `_ticks_applied` is how
        # often it has. The ticker needs the GIL, so under load it runs late, then
        # catches up in a burst.
        self._epoch_started = time.monotonic()
        self._ticks_applied = 0
        self._ticker = threading.Thread(target=self._tick, name="wasmwiz-epoch", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        # Scheduled against the monotonic clock, so a late wake-up catches up with the
        # missed ticks and the epoch keeps tracking wall time under load.
        next_tick = self._epoch_started + EPOCH_TICK_SECONDS
        while not self._stopped.wait(max(0.0, next_tick - time.monotonic())):
            now = time.monotonic()
            while next_tick <= now:
                self.engine.increment_epoch()
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

    def new_store(self, request: RunRequest, limits: Limits) -> wasmtime.Store:
        """A fresh Store, fully armed: WASI, limits, fuel and an epoch deadline."""
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
        store.set_fuel(fuel_budget(limits))
        store.set_epoch_deadline(self.epoch_deadline_ticks(limits.timeout_seconds))
        return store


def fuel_budget(limits: Limits) -> int:
    """The fuel a run's store starts with: its budget, or as good as unlimited."""
    return limits.max_fuel if limits.max_fuel is not None else UNLIMITED_FUEL


def _wasi_config(request: RunRequest) -> wasmtime.WasiConfig:
    wasi = wasmtime.WasiConfig()
    wasi.argv = [request.program_name, *request.args]
    wasi.env = [list(pair) for pair in request.env]
    _set_stdin_bytes(wasi, request.stdin)
    return wasi


def _set_stdin_bytes(wasi: wasmtime.WasiConfig, data: bytes) -> None:
    """Give the guest `data` as stdin, via the C API function wasmtime-py does not wrap."""
    vec = ffi.wasm_byte_vec_t()
    source: Any = (ctypes.c_ubyte * len(data)).from_buffer_copy(data)
    ffi.wasm_byte_vec_new(ctypes.byref(vec), len(data), source)  # copies into Rust memory
    # The C function takes ownership of the bytes and leaves `vec` empty; deleting an
    # emptied vector is a no-op, and it frees the copy should a future version copy instead.
    ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))
    ffi.wasm_byte_vec_delete(ctypes.byref(vec))


def get_export(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> Any:
    """Look up one export by name.

    `Instance.exports()` wraps every export in Python on each call, which for a module
    with a million exports is seconds of GIL-holding work outside any deadline.
    """
    raw_name = name.encode()
    item = ffi.wasmtime_extern_t()
    found = ffi.wasmtime_instance_export_get(
        store._context(), ctypes.byref(instance._instance), raw_name, len(raw_name),
        ctypes.byref(item),
    )  # fmt: skip
    return wrap_extern(item) if found else None
