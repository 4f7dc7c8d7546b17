"""The asyncio client against a real server: the same contract as the sync one."""

from __future__ import annotations

import asyncio

import pytest

from tests.api import wat
from tests.client.conftest import new_account
from tests.client.programs import echo_then_exit
from tests.fixtures.app import LiveServer, ServerFactory
from wasmwiz.ratelimit import ManualClock
from wasmwiz_client import (
    AsyncClient,
    AuthenticationError,
    ModuleRejectedError,
    Outcome,
    RateLimitedError,
)

pytestmark = pytest.mark.anyio


async def test_result_bytes_and_exit_code(server: LiveServer, api_key: str) -> None:
    async with AsyncClient(server.url, api_key) as client:
        result = await client.execute(
            echo_then_exit(2, b"oops\n").encode(), input=b"\x00in\xff", args=["a"]
        )
    assert result.status is Outcome.EXIT_NONZERO
    assert (result.stdout, result.stderr, result.exit_code) == (b"\x00in\xff", b"oops\n", 2)


async def test_concurrent_runs_share_one_client(server: LiveServer, api_key: str) -> None:
    async with AsyncClient(server.url, api_key) as client:
        results = await asyncio.gather(
            *(client.execute(echo_then_exit(0, b"").encode(), input=f"{i}") for i in range(8))
        )
    assert [result.text for result in results] == [f"{i}" for i in range(8)]


async def test_module_from_a_path(server: LiveServer, api_key: str, tmp_path: object) -> None:
    from pathlib import Path

    module = Path(str(tmp_path)) / "hello.wat"
    module.write_text(wat.HELLO)
    async with AsyncClient(server.url, api_key) as client:
        result = await client.execute(module)
    assert result.text == "Hello, WasmWiz!\n"


async def test_refusals_raise_typed_errors(server: LiveServer, api_key: str) -> None:
    async with AsyncClient(server.url, "ww_nope") as client:
        with pytest.raises(AuthenticationError) as auth:
            await client.execute(wat.HELLO.encode())
    assert auth.value.code == "unauthorized"
    async with AsyncClient(server.url, api_key) as client:
        with pytest.raises(ModuleRejectedError) as rejected:
            await client.execute(wat.UNKNOWN_IMPORT.encode())
    assert rejected.value.code == "unsupported_import"


async def test_429_with_and_without_retry(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    clock = ManualClock()
    server = server_factory(app_options={"clock": clock})
    free_key = new_account(migrated_database_url, tier="free").api_key
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    async with AsyncClient(server.url, free_key, sleep=sleep) as client:
        for _ in range(10):
            assert (await client.execute(wat.HELLO.encode())).ok
        with pytest.raises(RateLimitedError) as info:
            await client.execute(wat.HELLO.encode())
    assert info.value.retry_after == 6
    assert slept == []

    async with AsyncClient(server.url, free_key, retry=True, sleep=sleep) as client:
        result = await client.execute(wat.HELLO.encode())
    assert result.ok
    assert len(slept) == 1
    assert 6 <= slept[0] <= 6.6
