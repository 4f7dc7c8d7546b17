"""Validate and compile submitted bytes into a `CompiledModule` ready to instantiate."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import wasmtime

from wasmwiz.sandbox import validation
from wasmwiz.sandbox.engine import EngineContext
from wasmwiz.sandbox.models import ModuleRejected

# Compiled machine code plus wasmtime's metadata, per byte of wasm (a rough estimate used
# only to bound the cache; measured artifacts are about 5x the binary).
COST_PER_WASM_BYTE = 6
COST_OVERHEAD = 16 * 1024


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
    wasm_module: Any = field(repr=False, compare=False)
    instance_pre: Any = field(repr=False, compare=False)

    @property
    def cost(self) -> int:
        return self.size * COST_PER_WASM_BYTE + COST_OVERHEAD


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


def compile_module(
    context: EngineContext, data: bytes, sha256: str, max_module_bytes: int
) -> CompiledModule:
    """Run every check, compile, and resolve imports once. Raises ModuleRejected."""
    check_size(data, max_module_bytes)
    binary = validation.to_binary(data)
    check_size(binary, max_module_bytes)
    info = validation.inspect(binary)
    try:
        # Always binary here: given bytes not starting with \0, wasmtime would parse text.
        wasm_module = wasmtime.Module(context.engine, binary)
    except wasmtime.WasmtimeError as exc:
        raise validation.compile_error(exc) from None
    validation.check_start(wasm_module)
    try:
        instance_pre = context.linker.instantiate_pre(wasm_module)
    except wasmtime.WasmtimeError as exc:
        # The reader accepted every import's name, so this is a signature mismatch.
        raise ModuleRejected("unsupported_import", validation.summarize(str(exc))) from None
    return CompiledModule(
        sha256=sha256,
        size=len(binary),
        min_memory_bytes=info.min_memory_bytes,
        min_table_elements=max(info.table_min_elements, default=0),
        wasm_module=wasm_module,
        instance_pre=instance_pre,
    )
