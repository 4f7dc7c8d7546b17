"""Modules the sandbox refuses, each with its stable code."""

from __future__ import annotations

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.sandbox.conftest import fixture_wat
from wasmwiz.sandbox import ModuleRefused, Outcome, RunRequest, Sandbox, load_example

HELLO_BINARY = bytes(wasmtime.wat2wasm(load_example("hello").decode()))


def rejection(sandbox: Sandbox, data: bytes) -> ModuleRefused:
    with pytest.raises(ModuleRefused) as caught:
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
    except ModuleRefused as error:
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
              (memory (export "memory") 1) (func (export "_start")))"""

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


# One module per proposal the default engine refuses, each using just that proposal.
REFUSED_PROPOSALS = {
    "threads (shared memory)": (fixture_wat("shared_memory"), "threads"),
    "threads (atomics)": (
        b'(module (memory 1) (func (export "_start") (drop (i32.atomic.load (i32.const 0)))))',
        "threads",
    ),
    "memory64": (b'(module (memory i64 1) (func (export "_start")))', "memory64"),
    "multi-memory": (b'(module (memory 1) (memory 1) (func (export "_start")))', "multi-memory"),
    "gc (struct type)": (b'(module (type (struct (field i32))) (func (export "_start")))', "gc"),
    "gc (i31)": (b'(module (func (export "_start") (drop (ref.i31 (i32.const 1)))))', "gc"),
    "function-references": (
        b"""(module (type $t (func)) (func $f (type $t)) (elem declare func $f)
              (func (export "_start") (call_ref $t (ref.func $f))))""",
        "function-references",
    ),
    "wide-arithmetic": (
        b"""(module (func (export "_start") (drop (drop
              (i64.add128 (i64.const 1) (i64.const 2) (i64.const 3) (i64.const 4))))))""",
        "wide-arithmetic",
    ),
    "exceptions": (
        b'(module (tag $e) (func (export "_start") (try_table (catch_all 0) (throw $e))))',
        "exceptions",
    ),
    "custom-page-sizes": (
        b'(module (memory 1 (pagesize 1)) (func (export "_start")))',
        "custom-page-sizes",
    ),
}


@pytest.mark.parametrize(("wat", "feature"), REFUSED_PROPOSALS.values(), ids=REFUSED_PROPOSALS)
def test_disabled_proposals_are_named(sandbox: Sandbox, wat: bytes, feature: str) -> None:
    error = rejection(sandbox, wat)

    assert error.code == "unsupported_feature"
    assert f"the {feature} proposal" in error.message


def test_proposals_are_refused_before_compiling() -> None:
    with Sandbox(max_concurrency=1) as fresh:
        for wat, _ in REFUSED_PROPOSALS.values():
            assert rejection(fresh, wat).code == "unsupported_feature"
        assert fresh.stats().compiles == 0


@pytest.mark.parametrize(
    "wat",
    [
        # tail-call, relaxed-simd, simd, bulk-memory, reference-types, multi-value: Tier 1.
        b'(module (func $f) (func (export "_start") (return_call $f)))',
        b"""(module (func (export "_start")
              (drop (i32x4.relaxed_trunc_f32x4_s (v128.const i32x4 0 0 0 0)))))""",
        b"""(module (memory 1) (func (export "_start")
              (memory.fill (i32.const 0) (i32.const 0) (i32.const 8))))""",
        b'(module (table 1 externref) (func (export "_start") (drop (ref.null extern))))',
        b"""(module (func $two (result i32 i32) (i32.const 1) (i32.const 2))
              (func (export "_start") (drop (drop (call $two)))))""",
    ],
)
def test_tier_one_proposals_run(sandbox: Sandbox, wat: bytes) -> None:
    assert sandbox.run(sandbox.prepare(wat), RunRequest()).outcome is Outcome.SUCCESS


def test_a_deployment_can_turn_optional_proposals_on() -> None:
    exceptions, _ = REFUSED_PROPOSALS["exceptions"]
    call_ref, _ = REFUSED_PROPOSALS["function-references"]
    with Sandbox(extra_features={"exceptions", "function-references"}, max_concurrency=1) as on:
        for wat in (exceptions, call_ref):
            assert on.run(on.prepare(wat), RunRequest()).outcome is Outcome.SUCCESS
        wide, _ = REFUSED_PROPOSALS["wide-arithmetic"]
        assert rejection(on, wide).code == "unsupported_feature"


@pytest.mark.parametrize("feature", ["threads", "gc", "memory64", "bogus"])
def test_only_optional_proposals_can_be_turned_on(feature: str) -> None:
    with pytest.raises(ValueError, match="optional features"):
        Sandbox(extra_features={feature})


def test_wat_syntax_errors_keep_their_line_and_column(sandbox: Sandbox) -> None:
    wat = b'(module\n  (func (export "_start")\n    (i32.bogus)))\n'

    error = rejection(sandbox, wat)

    assert error.code == "invalid_wat"
    assert error.message == "unknown operator or unexpected token (at line 3, column 6)"


@pytest.mark.parametrize("text", [b"prog.wat", b"  hello.wasm\n", b";; a comment\nmodule"])
def test_text_that_is_not_a_module_hints_at_curls_at_sign(sandbox: Sandbox, text: bytes) -> None:
    # `curl -F wasm=prog.wat` sends the file's name, not the file.
    error = rejection(sandbox, text)

    assert error.code == "invalid_wasm"
    assert "neither a WebAssembly binary nor WebAssembly text" in error.message
    assert "-F wasm=@" in error.message
    assert text.strip().splitlines()[0].decode() in error.message


def test_text_after_comments_and_whitespace_is_still_text(sandbox: Sandbox) -> None:
    wat = b';; hello\n\n (; block ;) (module (func (export "_start")))'

    assert sandbox.run(sandbox.prepare(wat), RunRequest()).outcome is Outcome.SUCCESS


@pytest.mark.parametrize(
    "wat",
    [
        b"""(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (memory 1) (func (export "_start") (call $exit (i32.const 0))))""",
        b"""(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (memory (export "mem") 1) (func (export "_start") (call $exit (i32.const 0))))""",
        b"""(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (global (export "memory") i32 (i32.const 0))
              (func (export "_start") (call $exit (i32.const 0))))""",
    ],
)
def test_a_wasi_module_without_its_memory_export_is_refused(sandbox: Sandbox, wat: bytes) -> None:
    # wasmtime's WASI traps on any call without it ("missing required memory export").
    error = rejection(sandbox, wat)

    assert error.code == "missing_memory_export"
    assert "`memory`" in error.message


def test_a_module_that_calls_no_wasi_needs_no_memory(sandbox: Sandbox) -> None:
    wat = b'(module (func (export "_start")))'

    assert sandbox.run(sandbox.prepare(wat), RunRequest()).outcome is Outcome.SUCCESS
