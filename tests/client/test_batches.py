"""Batches through the client: one module, many inputs, one request, a result per case.

The cases' wire form is checked on its own, then batches run against a real server. A
batch of a stored module is in test_stored_modules.py, on both databases.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.api import wat
from tests.client.conftest import new_account
from tests.client.programs import RANDOM_BYTES, echo_then_exit
from tests.fixtures.app import LiveServer, ServerFactory
from wasmwiz.ratelimit import ManualClock
from wasmwiz_client import (
    AsyncClient,
    BatchCase,
    BatchResult,
    Client,
    InvalidCasesError,
    LimitExceededError,
    Outcome,
)
from wasmwiz_client._protocol import case_object


@pytest.mark.parametrize(
    ("case", "wire"),
    [
        (BatchCase(), {}),
        (BatchCase(stdin=b"\x00\xff"), {"stdin_base64": "AP8="}),
        (
            BatchCase(stdin="text", args=("-n", "3"), env={"K": "V"}),
            {"stdin": "text", "args": ["-n", "3"], "env": {"K": "V"}},
        ),
        (BatchCase(args=[], env={}), {"args": [], "env": {}}),
        ({"stdin": b"x", "args": ("a",)}, {"stdin_base64": "eA==", "args": ["a"]}),
        ({"stdin_base64": "eA==", "future": 1}, {"stdin_base64": "eA==", "future": 1}),
    ],
    ids=["empty", "bytes", "text", "empty-lists", "mapping-bytes", "mapping-as-given"],
)
def test_a_case_on_the_wire(case: BatchCase | dict[str, Any], wire: dict[str, Any]) -> None:
    assert case_object(case) == wire


def test_a_case_s_args_are_not_a_string() -> None:
    with pytest.raises(TypeError):
        case_object(BatchCase(args="-n 3"))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        case_object(["not", "a", "case"])  # type: ignore[arg-type]


def test_every_case_runs_in_order_with_the_defaults_it_lacks(
    server: LiveServer, api_key: str
) -> None:
    cases: list[BatchCase | dict[str, Any]] = [
        BatchCase(args=["one"]),
        {"args": ["two"], "env": {"X": "1"}},
        BatchCase(),
    ]
    with Client(server.url, api_key) as client:
        batch = client.run_batch(
            cases,
            wasm=wat.ARGS_AND_ENV.encode(),
            filename="show.wat",
            defaults=BatchCase(args=["default"], env={"D": "d"}),
        )

    assert isinstance(batch, BatchResult)
    assert isinstance(batch.batch_id, uuid.UUID)
    assert [result.text for result in batch.results] == [
        "show.wat\none\n-\nD=d\n",
        "show.wat\ntwo\n-\nX=1\n",
        "show.wat\ndefault\n-\nD=d\n",
    ]
    assert batch.ok
    assert len({result.execution_id for result in batch.results}) == 3
    assert all(result.request_id for result in batch.results)


@pytest.mark.parametrize("encoding", ["base64", "utf-8"])
def test_stdin_goes_byte_exact_and_outcomes_are_per_case(
    server: LiveServer, api_key: str, encoding: str
) -> None:
    binary = bytes(range(256))
    with Client(server.url, api_key) as client:
        batch = client.run_batch(
            [BatchCase(stdin=binary), BatchCase(stdin="é\n"), {"stdin": "plain"}],
            wasm=echo_then_exit(2, b"err\n").encode(),
            encoding=encoding,  # type: ignore[arg-type]
        )

    first, text, plain = batch.results
    if encoding == "base64":
        assert first.stdout == binary
    else:  # the service replaced the invalid bytes; the valid ones came back
        assert first.stdout.startswith(bytes(range(128)))
    assert (text.stdout, plain.stdout) == ("é\n".encode(), b"plain")
    assert all(result.stderr == b"err\n" for result in batch.results)
    assert all(result.status is Outcome.EXIT_NONZERO for result in batch.results)
    assert all(result.exit_code == 2 for result in batch.results)
    assert not batch.ok


def test_shared_options_apply_to_every_case(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        starved = client.run_batch([{}, {}], wasm=wat.INFINITE_LOOP.encode(), max_fuel=10_000)
        seeded = client.run_batch([{}, {}], wasm=RANDOM_BYTES.encode(), deterministic=True, seed=7)
        alone = client.execute(RANDOM_BYTES.encode(), deterministic=True, seed=7)

    assert [result.status for result in starved.results] == [Outcome.FUEL_EXHAUSTED] * 2
    assert [result.stdout for result in seeded.results] == [alone.stdout] * 2
    assert len(alone.stdout) == 16


def test_a_bad_case_is_refused_with_its_index(server: LiveServer, api_key: str) -> None:
    with Client(server.url, api_key) as client:
        with pytest.raises(InvalidCasesError) as bad:
            client.run_batch([{}, {"stdin": "x", "stdin_base64": "eA=="}], wasm=wat.HELLO.encode())
        with pytest.raises(InvalidCasesError) as too_many:
            client.run_batch([{}] * 101, wasm=wat.HELLO.encode())

    assert (bad.value.status, bad.value.code, bad.value.case) == (400, "invalid_cases", 1)
    assert (too_many.value.status, too_many.value.code) == (400, "invalid_cases")


def test_a_batch_past_the_budget_says_how_many_cases_fit(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory(app_options={"clock": ManualClock()})
    free_key = new_account(migrated_database_url, tier="free").api_key
    with Client(server.url, free_key) as client:
        for _ in range(10):  # the free tier's burst, with a clock that refills nothing
            assert client.execute(wat.HELLO.encode()).ok
        with pytest.raises(LimitExceededError) as info:
            client.run_batch([{}, {}], wasm=wat.HELLO.encode())

    assert info.value.status == 429
    assert info.value.fits == 0


@pytest.mark.anyio
async def test_the_async_client_runs_batches(server: LiveServer, api_key: str) -> None:
    async with AsyncClient(server.url, api_key) as client:
        batch = await client.run_batch(
            [BatchCase(stdin=f"{i}".encode()) for i in range(5)], wasm=wat.ECHO.encode()
        )

    assert [result.text for result in batch.results] == [f"{i}" for i in range(5)]
