"""The pre-compile inspection: declared shapes beyond the bounds are refused before compiling."""

from __future__ import annotations

import time

import pytest

from tests.sandbox import wasm_builder
from wasmwiz.sandbox import InspectionLimits, ModuleRejected, Outcome, RunRequest, Sandbox

BOUNDS = InspectionLimits(
    max_functions=1000,
    max_function_locals=500,
    max_function_body_bytes=10_000,
    max_data_segments=10,
)


@pytest.fixture(scope="module")
def strict() -> Sandbox:
    with Sandbox(inspection=BOUNDS, max_concurrency=1) as sandbox:
        yield sandbox  # type: ignore[misc]


@pytest.mark.parametrize(
    ("binary", "code"),
    [
        (wasm_builder.many_functions(1001), "too_many_functions"),
        (wasm_builder.many_locals(501), "too_many_locals"),
        (wasm_builder.straight_line(1500), "function_too_large"),
        (
            wasm_builder.module([wasm_builder.EMPTY_BODY], data_segments=11),
            "too_many_data_segments",
        ),
    ],
)
def test_shapes_beyond_the_bounds_are_refused(strict: Sandbox, binary: bytes, code: str) -> None:
    with pytest.raises(ModuleRejected) as caught:
        strict.prepare(binary)

    assert caught.value.code == code
    assert strict.stats().compiles == 0


@pytest.mark.parametrize(
    "binary",
    [
        wasm_builder.many_functions(1000),
        wasm_builder.many_locals(500),
        wasm_builder.straight_line(1400),
        wasm_builder.module([wasm_builder.EMPTY_BODY], data_segments=10),
    ],
)
def test_shapes_at_the_bounds_run(strict: Sandbox, binary: bytes) -> None:
    assert strict.run(strict.prepare(binary), RunRequest()).outcome is Outcome.SUCCESS


def test_a_huge_declared_count_is_refused_without_reading_it(sandbox: Sandbox) -> None:
    # Declares 2**32 - 1 functions in a 30-byte module.
    binary = b"\0asm\x01\0\0\0" + wasm_builder.section(3, wasm_builder.leb(2**32 - 1))
    started = time.perf_counter()

    with pytest.raises(ModuleRejected) as caught:
        sandbox.prepare(binary)

    assert caught.value.code == "too_many_functions"
    assert time.perf_counter() - started < 0.1


@pytest.mark.parametrize(
    "wat",
    [
        b'(module (func $f (export "_start") (param i32)))',
        b'(module (func (export "_start") (result i32) (i32.const 0)))',
        b'(module (global (export "_start") i32 (i32.const 0)))',
        b'(module (memory (export "_start") 1))',
        b"""(module (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
              (export "_start" (func $exit)))""",
    ],
)
def test_start_of_the_wrong_kind_or_type_is_missing_start(sandbox: Sandbox, wat: bytes) -> None:
    with pytest.raises(ModuleRejected) as caught:
        sandbox.prepare(wat)

    assert caught.value.code == "missing_start"
