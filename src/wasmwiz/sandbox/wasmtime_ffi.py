"""Every use of wasmtime-py's private API, behind a check of the version it was written for.

wasmtime-py wraps only part of wasmtime's C API. The sandbox needs a few things it does
not wrap (stdin from bytes, one export looked up by name, host functions through the
unchecked C callback, the pooling allocator) or wraps at a cost a short run notices
(instantiating, calling `_start`, reading a memory's size), and reaches them through
`wasmtime._ffi` and private attributes (`Store._context()`, `Instance._instance`,
`Caller._invalidate()`, `WasmtimeError._from_ptr`). Those can change in any release, so
they live here alone, and importing this module with another major version of wasmtime
fails at once with a message that says what to do, instead of crashing a run later.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
from dataclasses import dataclass
from typing import Any

import wasmtime

# The major version whose private API this module was written and tested against; it
# must match the bound on wasmtime in pyproject.toml.
SUPPORTED_MAJOR = 50


def _check_version(installed: str) -> None:
    major = installed.split(".", 1)[0]
    if major != str(SUPPORTED_MAJOR):
        raise ImportError(
            f"WasmWiz needs wasmtime {SUPPORTED_MAJOR}.x (it uses private parts of its "
            f"Python bindings), but wasmtime {installed} is installed; install the version "
            "pinned in requirements/runtime.txt"
        )


_check_version(importlib.metadata.version("wasmtime"))

from wasmtime import _ffi as ffi  # noqa: E402 - only after the version is known
from wasmtime._extern import wrap_extern  # noqa: E402


@dataclass(frozen=True, slots=True)
class InstancePool:
    """What wasmtime's pooling allocator reserves when an Engine is made: `instances`
    slots, each with room for `memories_per_instance` memories of up to `memory_bytes`,
    `tables_per_instance` tables of up to `table_elements`, and an instance's own state
    of up to `instance_bytes`. `keep_resident_bytes` of a memory stay mapped (zeroed) when
    its instance ends."""

    instances: int
    memories_per_instance: int
    memory_bytes: int
    tables_per_instance: int
    table_elements: int
    instance_bytes: int
    keep_resident_bytes: int


def use_instance_pool(config: wasmtime.Config, pool: InstancePool) -> None:
    """Make Engines built from `config` take instances from `pool`, not from mmap."""
    settings = ffi.wasmtime_pooling_allocation_config_new()
    try:
        for setter, value in (
            (ffi.wasmtime_pooling_allocation_config_total_core_instances_set, pool.instances),
            (
                ffi.wasmtime_pooling_allocation_config_total_memories_set,
                pool.instances * pool.memories_per_instance,
            ),
            # A store's GC heap (externref) takes one of the memories.
            (ffi.wasmtime_pooling_allocation_config_total_gc_heaps_set, pool.instances),
            (
                ffi.wasmtime_pooling_allocation_config_total_tables_set,
                pool.instances * pool.tables_per_instance,
            ),
            (ffi.wasmtime_pooling_allocation_config_max_memory_size_set, pool.memory_bytes),
            (
                ffi.wasmtime_pooling_allocation_config_max_tables_per_module_set,
                pool.tables_per_instance,
            ),
            (ffi.wasmtime_pooling_allocation_config_table_elements_set, pool.table_elements),
            (
                ffi.wasmtime_pooling_allocation_config_max_core_instance_size_set,
                pool.instance_bytes,
            ),
            (
                ffi.wasmtime_pooling_allocation_config_linear_memory_keep_resident_set,
                pool.keep_resident_bytes,
            ),
        ):
            setter(settings, value)
        ffi.wasmtime_pooling_allocation_strategy_set(config.ptr(), settings)
    finally:
        ffi.wasmtime_pooling_allocation_config_delete(settings)


def pool_exhausted(error: Exception) -> bool:
    """Whether instantiating failed because every slot of the instance pool is taken."""
    return isinstance(error, wasmtime.WasmtimeError) and "maximum concurrent limit of" in str(error)


def set_stdin_bytes(wasi: wasmtime.WasiConfig, data: bytes | memoryview) -> None:
    """Give the guest `data` as stdin, via the C API function wasmtime-py does not wrap.

    One copy, straight into a vector the C API allocated (which the config then owns): a
    ctypes array made from `data` first, and copied again by `wasm_byte_vec_new`, was two,
    each on fresh pages of its own.
    """
    size = len(data)
    vec = ffi.wasm_byte_vec_t()
    ffi.wasm_byte_vec_new_uninitialized(ctypes.byref(vec), size)
    if size:
        ctypes.memmove(vec.data, _address_of(data), size)
    # The C function takes ownership of the bytes and leaves `vec` empty; deleting an
    # emptied vector is a no-op, and it frees the copy should a future version copy instead.
    ffi.wasi_config_set_stdin_bytes(wasi.ptr(), ctypes.byref(vec))
    ffi.wasm_byte_vec_delete(ctypes.byref(vec))


def _address_of(data: bytes | memoryview) -> Any:
    """Something ctypes reads `data` through, in place: a bytes object converts as it is,
    a writable view (of the upload's mapping) through an array over its buffer; any other
    view is copied once."""
    if isinstance(data, bytes):
        return data
    view = memoryview(data)
    if view.readonly or not view.c_contiguous or view.itemsize != 1:
        return view.tobytes()
    return (ctypes.c_char * view.nbytes).from_buffer(view)


def get_export(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> Any:
    """Look up one export by name.

    `Instance.exports()` wraps every export in Python on each call, which for a module
    with a million exports is seconds of GIL-holding work outside any deadline.
    """
    item = _raw_export(store, instance, name)
    return wrap_extern(item) if item is not None else None


def _raw_export(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> Any:
    raw_name = name.encode()
    item = ffi.wasmtime_extern_t()
    found = ffi.wasmtime_instance_export_get(
        store._context(), ctypes.byref(instance._instance), raw_name, len(raw_name),
        ctypes.byref(item),
    )  # fmt: skip
    return item if found else None


def instantiate(instance_pre: wasmtime.InstancePre, store: wasmtime.Store) -> wasmtime.Instance:
    """`instance_pre.instantiate(store)`, raising the same `Trap` or `WasmtimeError`, without
    the context manager and checks wasmtime-py wraps around every call into wasm."""
    instance = ffi.wasmtime_instance_t()
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    error = ffi.wasmtime_instance_pre_instantiate(
        instance_pre.ptr(), store._context(), ctypes.byref(instance), ctypes.byref(trap)
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        raise wasmtime.Trap._from_ptr(trap)
    return wasmtime.Instance._from_raw(instance)


def call_nullary(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> None:
    """Call the exported function `name`, of type () -> (), as `Func.__call__` would.

    Raises what `Func.__call__` raises: `Trap`, or `WasmtimeError` (an `ExitTrap` for
    proc_exit). `Func.__call__` first asks wasmtime for the function's type and wraps
    every value, which for a short run costs more than the guest; the caller has checked
    the type (validation requires `_start: () -> ()`), and wasmtime checks it again.
    """
    item = _raw_export(store, instance, name)
    if item is None or item.kind != ffi.WASMTIME_EXTERN_FUNC.value:
        raise LookupError(f"no exported function {name!r}")
    trap = ctypes.POINTER(ffi.wasm_trap_t)()
    error = ffi.wasmtime_func_call(
        store._context(), ctypes.byref(item.of.func), None, 0, None, 0, ctypes.byref(trap)
    )
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)
    if trap:
        raise wasmtime.Trap._from_ptr(trap)


def memory_size(store: wasmtime.Store, instance: wasmtime.Instance, name: str) -> int:
    """The size in bytes of the exported memory `name`; 0 if there is no such memory."""
    item = _raw_export(store, instance, name)
    if item is None or item.kind != ffi.WASMTIME_EXTERN_MEMORY.value:
        return 0
    return int(ffi.wasmtime_memory_data_size(store._context(), ctypes.byref(item.of.memory)))


_MEMORY = b"memory"


def caller_memory(caller_ptr: Any, known: Any = None) -> tuple[int, int, Any]:
    """(address, size in bytes, the memory) of the calling instance's exported `memory`
    during a host call, from its raw `wasmtime_caller_t`; (0, 0, None) when it has none,
    and address 0 when it is empty. `known`, the memory a call of the same run found
    (a store holds one instance), skips the lookup.

    Straight through the C API: wasmtime-py's `Caller`, `Caller.get` and `Memory` wrap each
    step in Python objects, which cost more than the rest of a short host call.
    """
    memory = known
    if memory is None:
        item: Any = ffi.wasmtime_extern_t()  # its fields read as Python ints
        found = ffi.wasmtime_caller_export_get(
            caller_ptr, _MEMORY, len(_MEMORY), ctypes.byref(item)
        )
        if not found or item.kind != ffi.WASMTIME_EXTERN_MEMORY.value:
            return 0, 0, None
        memory = item.of.memory
    context = ffi.wasmtime_caller_context(caller_ptr)
    pointer = ctypes.byref(memory)
    size = int(ffi.wasmtime_memory_data_size(context, pointer))
    if size == 0:
        return 0, 0, memory
    return ctypes.addressof(ffi.wasmtime_memory_data(context, pointer).contents), size, memory


def unchecked_callback(trampoline: Any) -> Any:
    """Wrap a Python function as wasmtime's unchecked host-function C callback."""
    return ffi.wasmtime_func_unchecked_callback_t(trampoline)


def define_unchecked(
    linker: wasmtime.Linker, module: str, name: str, func_type: wasmtime.FuncType, callback: Any
) -> None:
    """Define `module.name` in `linker` as the unchecked C callback `callback`."""
    no_finalizer = ctypes.CFUNCTYPE(None, ctypes.c_void_p)()  # a NULL function pointer
    raw_module, raw_name = module.encode(), name.encode()
    error = ffi.wasmtime_linker_define_func_unchecked(
        linker.ptr(), raw_module, len(raw_module), raw_name, len(raw_name),
        func_type.ptr(), callback, None, no_finalizer,
    )  # fmt: skip
    if error:
        raise wasmtime.WasmtimeError._from_ptr(error)


def new_trap(message: str) -> int:
    """A trap built in C, as the address an unchecked callback returns to raise it."""
    raw = message.encode()
    trap = ffi.wasmtime_trap_new(raw, len(raw))
    return int(ctypes.cast(trap, ctypes.c_void_p).value or 0)
