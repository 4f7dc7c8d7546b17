"""Checks that turn submitted bytes into a binary the sandbox is willing to compile."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re

import wasmtime

from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox.models import InspectionLimits, ModuleRefused
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

# Bump when a check changes what is accepted (not only how a refusal reads): it is part
# of rules_digest, so artifacts accepted under the old rules are checked again.
RULES_VERSION = 2

# Substrings of wasmparser's messages for proposals the engine has turned off, most
# specific first. Only used to name the proposal in a rejection; nothing about a run is
# classified by message text.
_FEATURE_HINTS = (
    ("shared memor", "threads"),
    ("threads", "threads"),
    ("memory64", "memory64"),
    ("64-bit memor", "memory64"),
    ("multiple memories", "multi-memory"),
    ("multi-memory", "multi-memory"),
    ("function references", "function-references"),
    ("wide arithmetic", "wide-arithmetic"),
    ("exceptions proposal", "exceptions"),
    ("custom page sizes", "custom-page-sizes"),
    ("relaxed simd", "relaxed-simd"),
    ("simd support", "simd"),
    ("tail calls", "tail-call"),
    ("stack switching", "stack-switching"),
    ("gc feature", "gc"),
    ("gc support", "gc"),
    ("gc proposal", "gc"),
    ("requires gc", "gc"),
)
# wasmtime's text errors point at the source: "--> <anon>:LINE:COLUMN".
_WAT_POSITION = re.compile(r"-->\s*\S*?:(\d+):(\d+)")
_QUOTED_TEXT = 40


def check_size(data: bytes | memoryview, max_module_bytes: int) -> None:
    if not data:
        raise ModuleRefused(ProblemCode.EMPTY_WASM, "the module is empty")
    if len(data) > max_module_bytes:
        raise ModuleRefused(
            ProblemCode.WASM_TOO_LARGE,
            f"the module is {len(data)} bytes; the limit is {max_module_bytes} bytes",
        )


def check_header(data: bytes) -> None:
    """The only look at submitted bytes in the service's process: the first 8 bytes.

    Everything else (text conversion, the shape, validation) happens in a compile
    worker, so its cost never lands in the service, whatever the input's size.
    """
    if data.startswith(_MAGIC[: len(data)]) and len(data) < HEADER_SIZE:
        raise ModuleRefused(ProblemCode.TRUNCATED_WASM, "the binary ends inside its 8-byte header")
    if data.startswith(_MAGIC):
        _check_header(data)


def to_binary(data: bytes) -> bytes:
    """Return the core-module binary for `data`, converting WebAssembly text if needed.

    Runs in a compile worker: converting text costs time and memory in proportion to it.
    """
    check_header(data)
    if data.startswith(_MAGIC):
        return data
    if b"\0" in data:
        raise ModuleRefused(ProblemCode.INVALID_WASM, "not a WebAssembly binary (bad magic number)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ModuleRefused(
            ProblemCode.INVALID_WASM, "neither a WebAssembly binary nor UTF-8 WebAssembly text"
        ) from None
    if not _starts_like_wat(text):
        raise ModuleRefused(ProblemCode.INVALID_WASM, _not_a_module_message(text))
    try:
        binary = bytes(wasmtime.wat2wasm(text))
    except wasmtime.WasmtimeError as exc:
        raise ModuleRefused(ProblemCode.INVALID_WAT, wat_error_message(str(exc))) from None
    _check_header(binary)
    return binary


def _starts_like_wat(text: str) -> bool:
    """Whether `text`, past whitespace and `;;` line comments, opens with `(`.

    Every WebAssembly text module does (a block comment `(; ;)` too).
    """
    position = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n":
            position += 1
        if text.startswith(";;", position):
            newline = text.find("\n", position)
            if newline < 0:
                return False
            position = newline + 1
            continue
        return text.startswith("(", position)


def _not_a_module_message(text: str) -> str:
    head = text.strip().splitlines()[0] if text.strip() else ""
    shown = head[:_QUOTED_TEXT] + ("…" if len(head) > _QUOTED_TEXT else "")
    quoted = json.dumps(shown, ensure_ascii=True)
    return (
        f"neither a WebAssembly binary nor WebAssembly text (which starts with `(`): the "
        f"file holds the text {quoted}; with curl, did you forget the `@` before the file "
        f"name (-F wasm=@prog.wat)?"
    )


def wat_error_message(message: str) -> str:
    """wasmtime's text error in one line, keeping where it is: "... at line 3, column 5"."""
    head = first_line(message)
    position = _WAT_POSITION.search(message)
    if position is None:
        return head
    return f"{head} (at line {position.group(1)}, column {position.group(2)})"


def _check_header(binary: bytes) -> None:
    version = binary[4:HEADER_SIZE]
    if version == _COMPONENT_VERSION:
        raise ModuleRefused(
            ProblemCode.COMPONENT_NOT_SUPPORTED,
            "component-model binaries are not supported; submit a WASI preview 1 core module",
        )
    if version != _CORE_VERSION:
        raise ModuleRefused(
            ProblemCode.INVALID_WASM, f"unsupported WebAssembly version {version.hex()}"
        )


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
    proposals, declared memory and table minimums, the `_start` export and, for a
    module that calls WASI, the `memory` export.
    """
    try:
        info = read_wasm_info(binary, bounds)
    except TruncatedWasm:
        raise ModuleRefused(ProblemCode.TRUNCATED_WASM, "the binary ends unexpectedly") from None
    except MalformedWasm as exc:
        raise ModuleRefused(ProblemCode.INVALID_WASM, str(exc)) from None
    except ShapeExceeded as exc:
        raise ModuleRefused(exc.code, str(exc)) from None
    for entry in info.imports:
        if not (
            entry.is_function and entry.module == WASI and entry.name in WASI_PREVIEW1_FUNCTIONS
        ):
            raise ModuleRefused(
                ProblemCode.UNSUPPORTED_IMPORT,
                f"import {entry} is not a WASI preview 1 function",
            )
    feature = _unsupported_feature(info)
    if feature is not None:
        raise ModuleRefused(
            ProblemCode.UNSUPPORTED_FEATURE, f"the {feature} proposal is not supported"
        )
    if info.min_memory_bytes > max_memory_bytes:
        raise ModuleRefused(
            ProblemCode.DECLARED_MEMORY_TOO_LARGE,
            f"the module's minimum memory of {info.min_memory_bytes} bytes exceeds the "
            f"memory limit of {max_memory_bytes} bytes",
        )
    largest_table = max(info.table_min_elements, default=0)
    if largest_table > max_table_elements:
        raise ModuleRefused(
            ProblemCode.DECLARED_TABLE_TOO_LARGE,
            f"the module's minimum table size of {largest_table} elements exceeds the "
            f"limit of {max_table_elements}",
        )
    _check_start(binary, info)
    if info.imports_functions and not info.exports_memory:
        # wasmtime's WASI reads and writes through this export on every call, and a
        # module without it traps at its first WASI call: refuse it before it runs.
        raise ModuleRefused(
            ProblemCode.MISSING_MEMORY_EXPORT,
            "the module imports WASI functions but exports no memory named `memory`; "
            "WASI preview 1 needs it (a toolchain exports it unless told not to)",
        )
    return info


def _check_start(binary: bytes, info: WasmInfo) -> None:
    """Require an exported `_start` function of type () -> ()."""
    if info.start_export is None:
        raise ModuleRefused(ProblemCode.MISSING_START, "the module exports no `_start` function")
    try:
        signature = info.start_signature(binary)
    except (TruncatedWasm, MalformedWasm):
        signature = None
    if signature != (0, 0):
        raise ModuleRefused(
            ProblemCode.MISSING_START, "the export `_start` is not a function () -> ()"
        )


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


def rules_digest(
    inspection: InspectionLimits,
    features: frozenset[str],
    *,
    max_module_bytes: int,
    max_memory_bytes: int,
    max_table_elements: int,
    rules_version: int = RULES_VERSION,
) -> str:
    """A digest of every rule a module was accepted under: a changed rule changes it."""
    described = json.dumps(
        {
            "rules_version": rules_version,
            "inspection": dataclasses.asdict(inspection),
            "features": sorted(features),
            "wasi_functions": sorted(WASI_PREVIEW1_FUNCTIONS),
            "max_module_bytes": max_module_bytes,
            "max_memory_bytes": max_memory_bytes,
            "max_table_elements": max_table_elements,
        },
        sort_keys=True,
    )
    return hashlib.sha256(described.encode()).hexdigest()


def compile_error_message(text: str) -> ModuleRefused:
    """Map the text of wasmtime's validation or compilation error to a rejection."""
    message = summarize(text)
    lowered = message.lower()
    for hint, feature in _FEATURE_HINTS:
        if hint in lowered:
            return ModuleRefused(
                ProblemCode.UNSUPPORTED_FEATURE,
                f"the {feature} proposal is not enabled on this server: {message}",
            )
    return ModuleRefused(ProblemCode.INVALID_WASM, message)


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
