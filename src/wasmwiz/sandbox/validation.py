"""Checks that turn submitted bytes into a binary the sandbox is willing to compile."""

from __future__ import annotations

import wasmtime

from wasmwiz.sandbox.models import InspectionLimits, ModuleRejected
from wasmwiz.sandbox.wasi_host import WASI
from wasmwiz.sandbox.wasm_reader import (
    HEADER_SIZE,
    MalformedWasm,
    ShapeExceeded,
    TruncatedWasm,
    WasmInfo,
    read_wasm_info,
)

# Every function of WASI preview 1 (wasi_snapshot_preview1.witx), and nothing else.
WASI_PREVIEW1_FUNCTIONS = frozenset(
    {
        "args_get", "args_sizes_get", "environ_get", "environ_sizes_get",
        "clock_res_get", "clock_time_get",
        "fd_advise", "fd_allocate", "fd_close", "fd_datasync", "fd_fdstat_get",
        "fd_fdstat_set_flags", "fd_fdstat_set_rights", "fd_filestat_get",
        "fd_filestat_set_size", "fd_filestat_set_times", "fd_pread", "fd_prestat_get",
        "fd_prestat_dir_name", "fd_pwrite", "fd_read", "fd_readdir", "fd_renumber",
        "fd_seek", "fd_sync", "fd_tell", "fd_write",
        "path_create_directory", "path_filestat_get", "path_filestat_set_times",
        "path_link", "path_open", "path_readlink", "path_remove_directory",
        "path_rename", "path_symlink", "path_unlink_file",
        "poll_oneoff", "proc_exit", "proc_raise", "sched_yield", "random_get",
        "sock_accept", "sock_recv", "sock_send", "sock_shutdown",
    }
)  # fmt: skip

_MAGIC = b"\0asm"
_CORE_VERSION = b"\x01\0\0\0"
_COMPONENT_VERSION = b"\x0d\0\x01\0"

# Substrings of wasmparser's messages for proposals the engine has turned off. Only used
# to name the feature in a rejection; nothing about a run is classified by message text.
_FEATURE_HINTS = (
    ("shared memor", "threads"),
    ("threads", "threads"),
    ("memory64", "memory64"),
    ("64-bit memor", "memory64"),
    ("multiple memories", "multi-memory"),
    ("multi-memory", "multi-memory"),
    ("gc feature", "gc"),
    ("gc support", "gc"),
    ("gc proposal", "gc"),
)


def to_binary(data: bytes) -> bytes:
    """Return the core-module binary for `data`, converting WebAssembly text if needed."""
    if data.startswith(_MAGIC[: len(data)]) and len(data) < HEADER_SIZE:
        raise ModuleRejected("truncated_wasm", "the binary ends inside its 8-byte header")
    if data.startswith(_MAGIC):
        _check_header(data)
        return data
    if b"\0" in data:
        raise ModuleRejected("invalid_wasm", "not a WebAssembly binary (bad magic number)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModuleRejected(
            "invalid_wasm", "neither a WebAssembly binary nor UTF-8 WebAssembly text"
        ) from None
    try:
        binary = bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise ModuleRejected("invalid_wat", first_line(str(exc))) from None
    _check_header(binary)
    return binary


def _check_header(binary: bytes) -> None:
    version = binary[4:HEADER_SIZE]
    if version == _COMPONENT_VERSION:
        raise ModuleRejected(
            "component_not_supported",
            "component-model binaries are not supported; submit a WASI preview 1 core module",
        )
    if version != _CORE_VERSION:
        raise ModuleRejected("invalid_wasm", f"unsupported WebAssembly version {version.hex()}")


def inspect(
    binary: bytes,
    bounds: InspectionLimits,
    *,
    max_memory_bytes: int,
    max_table_elements: int,
) -> WasmInfo:
    """Read the binary's declared shape and refuse, before compiling, what cannot run.

    Checked in reading order, so the first problem in the binary is the one reported:
    truncation or corruption, bounds on counts and sizes, then imports, disabled
    proposals, declared memory and table minimums, and the `_start` export.
    """
    try:
        info = read_wasm_info(binary, bounds)
    except TruncatedWasm:
        raise ModuleRejected("truncated_wasm", "the binary ends unexpectedly") from None
    except MalformedWasm as exc:
        raise ModuleRejected("invalid_wasm", str(exc)) from None
    except ShapeExceeded as exc:
        raise ModuleRejected(exc.code, str(exc)) from None
    for entry in info.imports:
        if not (
            entry.is_function and entry.module == WASI and entry.name in WASI_PREVIEW1_FUNCTIONS
        ):
            raise ModuleRejected(
                "unsupported_import",
                f"import {entry} is not a WASI preview 1 function",
            )
    feature = _unsupported_feature(info)
    if feature is not None:
        raise ModuleRejected("unsupported_feature", f"the {feature} proposal is not supported")
    if info.min_memory_bytes > max_memory_bytes:
        raise ModuleRejected(
            "declared_memory_too_large",
            f"the module's minimum memory of {info.min_memory_bytes} bytes exceeds the "
            f"memory limit of {max_memory_bytes} bytes",
        )
    largest_table = max(info.table_min_elements, default=0)
    if largest_table > max_table_elements:
        raise ModuleRejected(
            "declared_table_too_large",
            f"the module's minimum table size of {largest_table} elements exceeds the "
            f"limit of {max_table_elements}",
        )
    _check_start(binary, info)
    return info


def _check_start(binary: bytes, info: WasmInfo) -> None:
    """Require an exported `_start` function of type () -> ()."""
    if info.start_export is None:
        raise ModuleRejected("missing_start", "the module exports no `_start` function")
    try:
        signature = info.start_signature(binary)
    except (TruncatedWasm, MalformedWasm):
        signature = None
    if signature != (0, 0):
        raise ModuleRejected("missing_start", "the export `_start` is not a function () -> ()")


def _unsupported_feature(info: WasmInfo) -> str | None:
    if any(m.shared for m in info.memories):
        return "threads"
    if any(m.memory64 for m in info.memories):
        return "memory64"
    if len(info.memories) > 1:
        return "multi-memory"
    if info.uses_gc_types:
        return "gc"
    return None


def compile_error_message(text: str) -> ModuleRejected:
    """Map the text of wasmtime's validation or compilation error to a rejection."""
    message = summarize(text)
    lowered = message.lower()
    for hint, feature in _FEATURE_HINTS:
        if hint in lowered:
            return ModuleRejected(
                "unsupported_feature", f"the {feature} proposal is not supported: {message}"
            )
    return ModuleRejected("invalid_wasm", message)


def first_line(message: str) -> str:
    return message.strip().splitlines()[0].strip() if message.strip() else "unknown error"


def summarize(message: str) -> str:
    """One line from wasmtime's multi-line error: its first line and its innermost cause."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    if not lines:
        return "unknown error"
    head, cause = lines[0], lines[-1]
    if cause == head or cause.startswith("Caused by"):
        return head
    # Causes are numbered ("1: ...") when there are several.
    number, _, rest = cause.partition(": ")
    if number.isdigit():
        cause = rest
    return f"{head}: {cause}"
