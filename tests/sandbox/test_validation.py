"""Modules the sandbox refuses, each with its stable code."""

from __future__ import annotations

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sandbox.conftest import fixture_wat
from wasmwiz.sandbox import ModuleRejected, Sandbox, load_example

HELLO_BINARY = bytes(wasmtime.wat2wasm(load_example("hello").decode()))


def rejection(sandbox: Sandbox, data: bytes) -> ModuleRejected:
    with pytest.raises(ModuleRejected) as caught:
        sandbox.prepare(data)
    assert "\n" not in caught.value.message
    return caught.value


def test_empty_module(sandbox: Sandbox) -> None:
    assert rejection(sandbox, b"").code == "empty_wasm"


def test_module_over_the_size_limit() -> None:
    with Sandbox(max_module_bytes=100, max_concurrency=1) as small:
        assert rejection(small, HELLO_BINARY).code == "wasm_too_large"


def test_component_binary(sandbox: Sandbox) -> None:
    component = b"\0asm\x0d\0\x01\0" + b"\0" * 16

    assert rejection(sandbox, component).code == "component_not_supported"


def test_component_text(sandbox: Sandbox) -> None:
    assert rejection(sandbox, b"(component)").code == "component_not_supported"


@pytest.mark.parametrize(
    "garbage",
    [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", b"\0\x01\x02\x03\x04\x05\x06\x07", b"\0asm\x02\0\0\0"],
)
def test_garbage_is_invalid_wasm(sandbox: Sandbox, garbage: bytes) -> None:
    assert rejection(sandbox, garbage).code == "invalid_wasm"


def test_corrupt_section_is_invalid_wasm(sandbox: Sandbox) -> None:
    # A type section of 3 bytes whose vector count never terminates inside it.
    corrupt = b"\0asm\x01\0\0\0" + b"\x01\x03\xff\xff\xff" + b"\x00\x01\x00"

    assert rejection(sandbox, corrupt).code == "invalid_wasm"


def test_bytes_that_fail_compilation_are_invalid_wasm(sandbox: Sandbox) -> None:
    # Well-formed sections, but _start leaves a value on the stack: a validation error.
    binary = bytes(wasmtime.wat2wasm('(module (func (export "_start") (i32.const 1)))'))

    error = rejection(sandbox, binary)

    assert error.code == "invalid_wasm"
    assert "type mismatch" in error.message


@pytest.mark.parametrize(
    "prefix", [b"\0", b"\0as", b"\0asm", b"\0asm\x01\0", HELLO_BINARY[: len(HELLO_BINARY) // 2]]
)
def test_truncated_binary(sandbox: Sandbox, prefix: bytes) -> None:
    assert rejection(sandbox, prefix).code == "truncated_wasm"


@settings(max_examples=60, deadline=None, database=None)
@given(cut=st.integers(min_value=1, max_value=len(HELLO_BINARY) - 1))
def test_every_cut_of_a_binary_is_handled_cleanly(sandbox: Sandbox, cut: int) -> None:
    # A cut on a section boundary can leave a valid module (hello without its data).
    try:
        outcome = f"compiled {sandbox.prepare(HELLO_BINARY[:cut]).size}"
    except ModuleRejected as error:
        outcome = error.code
    assert outcome in {"truncated_wasm", "invalid_wasm", "missing_start", f"compiled {cut}"}


def test_invalid_text(sandbox: Sandbox) -> None:
    error = rejection(sandbox, b"(module (func (i32.bogus)))")

    assert error.code == "invalid_wat"
    assert error.message


def test_unknown_import_is_named(sandbox: Sandbox) -> None:
    error = rejection(sandbox, fixture_wat("unknown_import"))

    assert error.code == "unsupported_import"
    assert "env.foo" in error.message


def test_unknown_wasi_function_is_refused(sandbox: Sandbox) -> None:
    wat = b"""(module (import "wasi_snapshot_preview1" "fd_bogus" (func))
              (func (export "_start")))"""

    error = rejection(sandbox, wat)

    assert error.code == "unsupported_import"
    assert "wasi_snapshot_preview1.fd_bogus" in error.message


def test_wasi_function_with_the_wrong_signature_is_refused(sandbox: Sandbox) -> None:
    wat = b"""(module (import "wasi_snapshot_preview1" "fd_write" (func (param i32)))
              (func (export "_start")))"""

    assert rejection(sandbox, wat).code == "unsupported_import"


def test_imported_memory_is_refused(sandbox: Sandbox) -> None:
    wat = b"""(module (import "wasi_snapshot_preview1" "memory" (memory 1))
              (func (export "_start")))"""

    assert rejection(sandbox, wat).code == "unsupported_import"


def test_missing_start(sandbox: Sandbox) -> None:
    assert rejection(sandbox, fixture_wat("no_start")).code == "missing_start"


def test_start_of_the_wrong_type(sandbox: Sandbox) -> None:
    wat = b'(module (func (export "_start") (param i32)))'

    assert rejection(sandbox, wat).code == "missing_start"


@pytest.mark.parametrize(
    ("wat", "feature"),
    [
        (fixture_wat("shared_memory"), "threads"),
        (
            b'(module (memory 1) (func (export "_start") (drop (i32.atomic.load (i32.const 0)))))',
            "threads",
        ),
        (b'(module (memory i64 1) (func (export "_start")))', "memory64"),
        (b'(module (memory 1) (memory 1) (func (export "_start")))', "multi-memory"),
        (b'(module (type (struct (field i32))) (func (export "_start")))', "gc"),
        (b'(module (func (export "_start") (drop (ref.i31 (i32.const 1)))))', "gc"),
    ],
)
def test_disabled_proposals_are_named(sandbox: Sandbox, wat: bytes, feature: str) -> None:
    error = rejection(sandbox, wat)

    assert error.code == "unsupported_feature"
    assert feature in error.message
