"""Property-based fuzzing: 10,000 mutated modules and random byte strings, no surprises.

Every input either is refused with a documented code or runs to a documented outcome
within its deadline. In process against `Sandbox` (compiles still go to the worker
processes), for speed; a crash of the engine would take the test run down with it.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.sandbox.conftest import fixture_wat
from wasmwiz.problem_codes import MODULE_REFUSALS, ProblemCode
from wasmwiz.sandbox import Limits, ModuleRefused, Outcome, RunRequest, Sandbox, load_example

MUTATED_EXAMPLES = 7_000
RANDOM_EXAMPLES = 3_000
LIMITS = Limits(timeout_seconds=0.5, memory_bytes=16 * 1024 * 1024, max_fuel=2_000_000,
                max_output_bytes=4096)  # fmt: skip
DEADLINE_MARGIN = 0.5
# Every code the engine refuses a module with; wasm_too_large is out of reach here.
DOCUMENTED_CODES = MODULE_REFUSALS - {ProblemCode.WASM_TOO_LARGE}
CORPUS = [
    bytes(wasmtime.wat2wasm(wat.decode()))
    for wat in [
        load_example("hello"),
        load_example("echo"),
        load_example("loop"),
        fixture_wat("print_args_env"),
        fixture_wat("clocks"),
        fixture_wat("time_random_sleep"),
        fixture_wat("bad_pointers"),
        fixture_wat("grow_bomb"),
        fixture_wat("recursion_print"),
        fixture_wat("start_loop"),
    ]
]


@st.composite
def mutated_modules(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data)))
        operation = draw(st.sampled_from(["flip", "set", "insert", "delete", "cut", "repeat"]))
        if operation == "flip" and position < len(data):
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif operation == "set" and position < len(data):
            data[position] = draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x0B, 0x40]))
        elif operation == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif operation == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif operation == "cut":
            del data[max(position, 9) :]
        elif operation == "repeat":
            data[position:position] = data[position : position + draw(st.integers(1, 32))]
    return bytes(data)


@pytest.fixture(scope="module")
def fuzz_sandbox() -> Iterator[Sandbox]:
    # No disk cache and a small memory cache: thousands of distinct modules pass through.
    with Sandbox(limits=LIMITS, max_concurrency=1, cache_max_bytes=8 * 1024 * 1024) as sandbox:
        yield sandbox


def check(sandbox: Sandbox, data: bytes, seen: Counter[str]) -> None:
    try:
        compiled = sandbox.prepare(data)
    except ModuleRefused as refusal:
        code, message = refusal.code, refusal.message
        assert code in DOCUMENTED_CODES, refusal  # noqa: PT017 - every input, not one
        assert "\n" not in message
        seen[code] += 1
        return
    started = time.monotonic()
    result = sandbox.run(compiled, RunRequest(deterministic=True), LIMITS)
    assert time.monotonic() - started < LIMITS.timeout_seconds + DEADLINE_MARGIN
    assert isinstance(result.outcome, Outcome)
    seen[result.outcome.value] += 1


def fuzz_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        database=None,
        derandomize=True,  # the same inputs in every CI run; a failure reproduces locally
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


@pytest.mark.slow
def test_mutated_modules_and_random_bytes(fuzz_sandbox: Sandbox) -> None:
    seen: Counter[str] = Counter()

    @fuzz_settings(MUTATED_EXAMPLES)
    @given(data=mutated_modules())
    def mutated(data: bytes) -> None:
        check(fuzz_sandbox, data, seen)

    @fuzz_settings(RANDOM_EXAMPLES)
    @given(
        data=st.one_of(
            st.binary(min_size=0, max_size=512),
            st.binary(min_size=0, max_size=512).map(lambda tail: b"\0asm\x01\0\0\0" + tail),
        )
    )
    def random_bytes(data: bytes) -> None:
        check(fuzz_sandbox, data, seen)

    mutated()
    random_bytes()

    print(sorted(seen.items()))
    assert sum(seen.values()) >= MUTATED_EXAMPLES + RANDOM_EXAMPLES
    assert seen["success"] > 0  # some inputs got all the way through a run
    fuzz_sandbox.check()  # raises SandboxError unless the engine still works
