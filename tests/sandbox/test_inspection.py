"""The pre-compile inspection: declared shapes beyond the bounds are refused before compiling."""

from __future__ import annotations

import time

import pytest

from tests.sandbox import wasm_builder
from wasmwiz.sandbox import (
    InspectionLimits,
    ModuleRefused,
    Outcome,
    RunRequest,
    Sandbox,
    load_example,
)

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
    with pytest.raises(ModuleRefused) as caught:
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
    sandbox.prepare(load_example("hello"))  # a compile worker is up
    started = time.perf_counter()

    with pytest.raises(ModuleRefused) as caught:
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
    with pytest.raises(ModuleRefused) as caught:
        sandbox.prepare(wat)

    assert caught.value.code == "missing_start"


# Each section declares 2**32 - 1 entries and holds none: refused from the count alone.
HUGE = wasm_builder.leb(2**32 - 1)


@pytest.mark.parametrize(
    ("section_id", "code"),
    [
        (1, "too_many_types"),
        (2, "too_many_imports"),
        (4, "too_many_tables"),
        (5, "too_many_memories"),
        (7, "too_many_exports"),
    ],
)
def test_each_sections_count_is_checked_before_its_entries(
    sandbox: Sandbox, section_id: int, code: str
) -> None:
    binary = b"\0asm\x01\0\0\0" + wasm_builder.section(section_id, HUGE)

    with pytest.raises(ModuleRefused) as caught:
        sandbox.prepare(binary)

    assert caught.value.code == code
    assert "4294967295" in caught.value.message


def entries(section_id: int, entry: bytes, count: int) -> bytes:
    return b"\0asm\x01\0\0\0" + wasm_builder.section(
        section_id, wasm_builder.vector([entry] * count)
    )


COUNTED = InspectionLimits(max_types=3, max_imports=3, max_exports=3, max_memories=3, max_tables=3)


@pytest.mark.parametrize(
    ("section_id", "entry", "code"),
    [
        (1, b"\x60\x00\x00", "too_many_types"),
        (2, b"\x16wasi_snapshot_preview1\x0bsched_yield\x00\x00", "too_many_imports"),
        (4, b"\x70\x00\x00", "too_many_tables"),
        (5, b"\x00\x00", "too_many_memories"),
        (7, b"\x01a\x02\x00", "too_many_exports"),
    ],
)
def test_count_bounds_are_settings(section_id: int, entry: bytes, code: str) -> None:
    with Sandbox(inspection=COUNTED, max_concurrency=1) as sandbox:
        for count, expected in ((3, None), (4, code)):  # the bound is 3
            # At the bound the module is refused later (it has no `_start`), not by it.
            with pytest.raises(ModuleRefused) as caught:
                sandbox.prepare(entries(section_id, entry, count))
            assert (caught.value.code == code) is (expected is not None)
