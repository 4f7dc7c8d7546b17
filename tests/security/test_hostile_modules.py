"""Every hostile module of the threat model, sent through the HTTP API to the real service.

Each case asserts the precise outcome (a 200 with `status`) or refusal (a problem
details `code`), and then that the service still answers hello-world correctly.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import httpx
import pytest

from tests.security import guests
from tests.security.checks import execute, ran, refused
from tests.security.conftest import new_accounts, start_security_server

# Outcomes and refusal codes, nothing measured: with the parallel pass, under coverage.
pytestmark = pytest.mark.parallel

ERRNO_BADF = 8
ERRNO_FAULT = 21
ERRNO_NOTSOCK = 57
ERRNO_NOTSUP = 58
DEADLINE_MARGIN_MS = 700  # epoch granularity plus a busy 2-core machine


def errnos(body: dict[str, object]) -> list[int]:
    raw = base64.b64decode(str(body["output"]))
    return list(struct.unpack(f"<{len(raw) // 4}I", raw))


# Runs that must end in a precise outcome.


@pytest.mark.parametrize(
    ("wat", "status"),
    [
        (guests.INFINITE_LOOP, "timeout"),
        (guests.START_LOOP, "timeout"),
        (guests.RECURSION, "stack_overflow"),
    ],
    ids=["infinite-loop", "infinite-loop-in-start", "unbounded-recursion"],
)
def test_runaway_guests_end_at_their_limit(api: httpx.Client, wat: str, status: str) -> None:
    body = ran(api, wat, status)

    assert body["duration_ms"] < 1000 + DEADLINE_MARGIN_MS


def test_memory_grow_loop_is_memory_limit(api: httpx.Client) -> None:
    body = ran(api, guests.MEMORY_GROW_LOOP, "memory_limit")

    assert body["memory_peak_bytes"] == 32 * 1024 * 1024


def test_table_grow_loop_stops_at_the_element_cap(api: httpx.Client) -> None:
    # table.grow returns -1 at the cap (100,000 elements); the guest then traps.
    body = ran(api, guests.TABLE_GROW_LOOP, "trap")

    assert body["error"] == "trap: unreachable instruction executed"


@pytest.mark.parametrize(("fd", "field"), [(1, "output"), (2, "stderr")])
def test_a_gibibyte_of_output_keeps_exactly_the_cap(api: httpx.Client, fd: int, field: str) -> None:
    body = ran(api, guests.writing_forever(fd), "output_limit")

    assert len(base64.b64decode(str(body[field]))) == 1024 * 1024
    assert body["output_truncated" if fd == 1 else "stderr_truncated"] is True


def test_a_start_function_is_under_the_output_limit(api: httpx.Client) -> None:
    ran(api, guests.START_PRINTING_FOREVER, "output_limit")


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_sleeping_for_an_hour_ends_at_the_deadline(api: httpx.Client, absolute: bool) -> None:
    body = ran(api, guests.sleeping(absolute=absolute), "timeout")

    assert 900 <= body["duration_ms"] < 1000 + DEADLINE_MARGIN_MS


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
def test_a_deterministic_hour_long_sleep_is_a_timeout_at_once(
    api: httpx.Client, absolute: bool
) -> None:
    body = ran(api, guests.sleeping(absolute=absolute), "timeout", deterministic="true")

    assert body["duration_ms"] < 500


def test_path_open_reaches_no_file(api: httpx.Client) -> None:
    # /etc/passwd and ../ relative to every descriptor from 0 to 64: none is a directory.
    assert set(errnos(ran(api, guests.path_open_probe(), "success"))) == {ERRNO_BADF}


def test_no_descriptor_is_preopened(api: httpx.Client) -> None:
    assert set(errnos(ran(api, guests.prestat_probe(), "success"))) == {ERRNO_BADF}


def test_every_socket_call_fails(api: httpx.Client) -> None:
    results = errnos(ran(api, guests.socket_probe(), "success"))

    assert len(results) == 64
    assert 0 not in results
    assert set(results) <= {ERRNO_BADF, ERRNO_NOTSOCK}


def test_the_environment_holds_nothing_of_the_host(api: httpx.Client) -> None:
    assert errnos(ran(api, guests.environ_probe(), "success")) == [0, 0]


def test_proc_raise_is_not_supported(api: httpx.Client) -> None:
    assert errnos(ran(api, guests.proc_raise(), "success")) == [ERRNO_NOTSUP]


def test_a_large_argv_arrives_whole(api: httpx.Client) -> None:
    args = [f"{i:04}" + "x" * 56 for i in range(1000)]  # 61,000 bytes of JSON-free text
    body = ran(api, guests.args_sizes(), "success", args=_json(args))

    argc, argv_bytes = errnos(body)
    assert argc == 1001
    assert argv_bytes == len("guest.wasm") + 1 + sum(len(a) + 1 for a in args)


def test_out_of_bounds_pointers_to_every_replaced_call_get_efault(api: httpx.Client) -> None:
    assert (
        errnos(ran(api, guests.replaced_calls_with_bad_pointers(), "success")) == [ERRNO_FAULT] * 10
    )


# Modules that must be refused with a precise code.


@pytest.mark.parametrize(
    ("wasm", "status", "code"),
    [
        (guests.IMPORTS_ENV_FOO, 422, "unsupported_import"),
        (guests.HUGE_DECLARED_MEMORY, 422, "declared_memory_too_large"),
        (guests.HUGE_TABLE, 422, "declared_table_too_large"),
        (guests.COMPONENT, 422, "component_not_supported"),
        (b"\0asm\x01\0\0\0\x01", 422, "truncated_wasm"),
        (guests.GARBAGE_WITH_MAGIC, 422, "invalid_wasm"),
        (guests.CORRUPT_SECTION, 422, "invalid_wasm"),
        (guests.INVALID_WAT, 422, "invalid_wat"),
        (b"\0asm\x01\0\0\0" + b"\0" * (10 * 1024 * 1024 - 7), 413, "wasm_too_large"),
    ],
    ids=[
        "env-foo", "huge-memory", "huge-table", "component", "truncated", "garbage-with-magic",
        "corrupt-section", "invalid-wat", "10-MiB-plus-one",
    ],
)  # fmt: skip
def test_unacceptable_modules_are_refused(
    api: httpx.Client, wasm: bytes | str, status: int, code: str
) -> None:
    refused(api, wasm, status, code)


def test_an_empty_file_is_refused(api: httpx.Client) -> None:
    problem = refused(api, b"", 422, "empty_wasm")

    assert problem["status"] == 422


@pytest.mark.parametrize(
    ("wat", "feature"),
    [
        (guests.THREADS, "threads"),
        (guests.MEMORY64, "memory64"),
        (guests.MULTI_MEMORY, "multi-memory"),
        (guests.GC, "gc"),
    ],
)
def test_disabled_proposals_are_refused_by_name(api: httpx.Client, wat: str, feature: str) -> None:
    problem = refused(api, wat, 422, "unsupported_feature")

    assert feature in problem["detail"]


# Compile bombs: refused within the compile budget, and never compiled twice.


@pytest.mark.parametrize(
    ("binary", "code"),
    [
        (guests.MANY_FUNCTIONS, "too_many_functions"),
        (guests.MANY_LOCALS, "too_many_locals"),
        (guests.HUGE_BODY, "function_too_large"),
    ],
    ids=["a-million-functions", "forty-thousand-locals", "seven-MB-body"],
)
def test_shapes_that_cost_to_compile_are_refused_before_compiling(
    api: httpx.Client, binary: bytes, code: str
) -> None:
    refused(api, binary, 422, code)


def test_a_module_slow_to_compile_is_compile_timeout_then_refused_at_once(
    api: httpx.Client,
) -> None:
    # 90,000 functions of three small loops each pass the inspection and take about 10
    # CPU seconds to compile on a 2-core machine of 2026, against a budget of 2 (the
    # worker's CPU limit rounds up to the next whole second: at most 3).
    refused(api, guests.SLOW_MANY_FUNCTIONS, 422, "compile_timeout")

    response = execute(api, guests.SLOW_MANY_FUNCTIONS)

    assert response.json()["code"] == "compile_timeout"
    assert response.elapsed.total_seconds() < 1.5


def test_a_module_hungry_to_compile_is_compile_memory_limit(tmp_path: Path) -> None:
    # A server of its own: a long compile budget, so the address-space cap is what ends it.
    server = start_security_server(
        tmp_path,
        compile_timeout=120,
        compile_memory_limit=400 * 1024 * 1024,
        max_wasm_functions=1_000_000,
    )
    try:
        [account] = new_accounts(server, 1)
        with httpx.Client(base_url=server.url, headers=account.headers, timeout=120) as api:
            refused(api, guests.HUNGRY_TO_COMPILE, 422, "compile_memory_limit")
            refused(api, guests.HUNGRY_TO_COMPILE, 422, "compile_memory_limit")
    finally:
        server.stop()


# Legitimate shapes that must run.


@pytest.mark.parametrize(
    "binary", [guests.DEEP_NESTING, guests.HUGE_BR_TABLE], ids=["50k-nested-blocks", "br_table"]
)
def test_legitimate_extreme_shapes_run(api: httpx.Client, binary: bytes) -> None:
    ran(api, binary, "success")


def _json(values: list[str]) -> str:
    return json.dumps(values)
