"""Every use of wasmtime-py's private API, behind a check of the version it was written for.

wasmtime-py wraps only part of wasmtime's C API. The sandbox needs a few things it does
not wrap (stdin from bytes, one export looked up by name, host functions through the
unchecked C callback), and reaches them through `wasmtime._ffi` and private attributes
(`Store._context()`, `Instance._instance`, `Caller._invalidate()`,
`WasmtimeError._from_ptr`). Those can change in any release, so they live here alone,
and importing this module with another major version of wasmtime fails at once with a
message that says what to do, instead of crashing a run later.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
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


def set_stdin_bytes(wasi: wasmtime.WasiConfig, data: bytes | memoryview) -> None:
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


def invalidate_caller(caller: wasmtime.Caller) -> None:
    """End a Caller's validity once the host call that received it returns."""
    caller._invalidate()
