"""A run's result and a job's request survive their bytes exactly, and a value that does
not add up is refused, not misread."""

from __future__ import annotations

from dataclasses import replace

import pytest

from wasmwiz.sandbox import Outcome, RunResult
from wasmwiz.sandbox.file_input import InputEntry
from wasmwiz.sandbox.models import CollectedFile
from wasmwiz.services.executions import ExecutionRequest
from wasmwiz.services.job_payload import decode_request, encode_request
from wasmwiz.services.run_codec import decode_result, encode_result

RESULT = RunResult(
    outcome=Outcome.EXIT_NONZERO,
    exit_code=3,
    stdout=b"\x00\xffout",
    stderr=b"err\n",
    stdout_truncated=True,
    stderr_truncated=False,
    duration_seconds=0.125,
    fuel_consumed=12345,
    memory_peak_bytes=65536,
    error="exited with 3",
    module_sha256="ab" * 32,
    module_size=321,
    files=(
        CollectedFile("out/a.bin", 3, "cd" * 32, b"\x01\x02\x03"),
        CollectedFile("out/big", 10**9, "ef" * 32, None),
    ),
    files_truncated=True,
)


def test_a_result_round_trips() -> None:
    assert decode_result(encode_result(RESULT)) == RESULT


def test_an_unmetered_results_fuel_round_trips_as_none() -> None:
    unmetered = replace(RESULT, fuel_consumed=None)
    assert decode_result(encode_result(unmetered)).fuel_consumed is None


def test_a_request_round_trips_with_its_files() -> None:
    request = ExecutionRequest(
        wasm=b"\x00asm\x01\x00\x00\x00",
        stdin=memoryview(b"stdin \xff"),
        args=("-n", "3"),
        env={"LANG": "C"},
        program_name="prog.wasm",
        deterministic=True,
        seed=7,
        max_fuel=10**9,
        files=(InputEntry("data", None), InputEntry("data/in.csv", b"a,b\n")),
        collect=("out/**",),
        cache=False,
    )
    decoded = decode_request(encode_request(request))
    assert decoded == ExecutionRequest(**{**_fields(request), "stdin": b"stdin \xff"})


def test_a_stored_module_reference_round_trips_without_bytes() -> None:
    request = ExecutionRequest(wasm=None, module="grader", files=None)
    decoded = decode_request(encode_request(request))
    assert decoded.wasm is None
    assert decoded.module == "grader"
    assert decoded.files is None


@pytest.mark.parametrize("cut", [1, 7])
def test_a_value_that_does_not_add_up_is_refused(cut: int) -> None:
    body = encode_result(RESULT)
    with pytest.raises(ValueError, match="length"):
        decode_result(body[:-cut])
    with pytest.raises(ValueError, match="length"):
        decode_result(body + b"x" * cut)


def _fields(request: ExecutionRequest) -> dict[str, object]:
    return {name: getattr(request, name) for name in ExecutionRequest.__dataclass_fields__}
