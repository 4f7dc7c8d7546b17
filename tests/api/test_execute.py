"""POST /api/v1/execute over real HTTP: every outcome, and every refusal by its code."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import httpx
import pytest

from tests.api import wat
from tests.fixtures.app import Account, ServerFactory, create_account

pytestmark = pytest.mark.anyio

CAP = 64 * 1024


async def execute(
    client: httpx.AsyncClient,
    account: Account,
    module: str | bytes,
    *,
    path: str = "/api/v1/execute",
    data: dict[str, str] | None = None,
    stdin: bytes | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    files: dict[str, tuple[str, bytes]] = {
        "wasm": ("main.wat", module.encode() if isinstance(module, str) else module)
    }
    if stdin is not None:
        files["input"] = ("input.bin", stdin)
    return await client.post(
        path, headers=account.headers, files=files, data=data or {}, params=params
    )


async def test_hello_world(client: httpx.AsyncClient, account: Account) -> None:
    response = await execute(client, account, wat.HELLO)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "success"
    assert body["output"] == "Hello, WasmWiz!\n"
    assert body["error"] is None
    assert body["exit_code"] == 0
    assert body["stderr"] == ""
    assert body["fuel_consumed"] is None  # no fuel budget: not metered
    assert body["fuel_consumed_is_lower_bound"] is False
    assert body["memory_peak_bytes"] == 65536
    assert body["output_truncated"] is False
    assert response.headers["X-Request-ID"]


async def test_fuel_is_counted_only_for_a_run_with_a_budget(
    client: httpx.AsyncClient, account: Account
) -> None:
    # The same module without, with, then without a budget: each run on its own engine,
    # and neither engine's compiled module served to the other.
    plain = (await execute(client, account, wat.HELLO)).json()
    metered = (await execute(client, account, wat.HELLO, data={"max_fuel": "1000000"})).json()
    again = (await execute(client, account, wat.HELLO)).json()

    assert plain["output"] == metered["output"] == again["output"] == "Hello, WasmWiz!\n"
    assert (plain["fuel_consumed"], again["fuel_consumed"]) == (None, None)
    assert 0 < metered["fuel_consumed"] < 1_000_000


async def test_execute_alias_path(client: httpx.AsyncClient, account: Account) -> None:
    response = await execute(client, account, wat.HELLO, path="/execute")
    assert response.json()["output"] == "Hello, WasmWiz!\n"


async def test_one_mebibyte_of_binary_stdin_round_trips(
    client: httpx.AsyncClient, account: Account
) -> None:
    payload = os.urandom(1024 * 1024)
    response = await execute(
        client, account, wat.ECHO, stdin=payload, params={"encoding": "base64"}
    )
    body = response.json()
    assert body["status"] == "success", body
    assert base64.b64decode(body["output"]) == payload


async def test_stdin_as_a_text_field(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        "/api/v1/execute",
        headers=account.headers,
        files={"wasm": ("echo.wat", wat.ECHO.encode())},
        data={"input": "typed in a form\n"},
    )
    assert response.json()["output"] == "typed in a form\n"


async def test_args_and_env_exactly_as_sent(client: httpx.AsyncClient, account: Account) -> None:
    args = ["one", "two words", "ünïcode", ""]
    env = {"GREETING": "hello", "EMPTY": "", "WITH_EQUALS": "a=b"}
    response = await execute(
        client,
        account,
        wat.ARGS_AND_ENV,
        data={"args": json.dumps(args), "env": json.dumps(env)},
    )
    body = response.json()
    assert body["status"] == "success", body
    argv_block, env_block = body["output"].split("-\n")
    assert argv_block.split("\n")[:-1] == ["main.wat", *args]
    assert sorted(env_block.split("\n")[:-1]) == sorted(f"{k}={v}" for k, v in env.items())


async def test_environment_is_empty_when_none_is_sent(
    client: httpx.AsyncClient, account: Account
) -> None:
    response = await execute(client, account, wat.ARGS_AND_ENV)
    assert response.json()["output"] == "main.wat\n-\n"


@pytest.mark.parametrize(
    ("module", "status", "exit_code"),
    [
        (wat.EXIT_3, "exit_nonzero", 3),
        (wat.UNREACHABLE, "trap", None),
        (wat.RECURSION, "stack_overflow", None),
        (wat.MEMORY_BOMB, "memory_limit", None),
    ],
)
async def test_failing_programs_are_outcomes(
    client: httpx.AsyncClient, account: Account, module: str, status: str, exit_code: int | None
) -> None:
    response = await execute(client, account, module)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == status, body
    assert body["exit_code"] == exit_code
    assert body["error"]
    assert "\n" not in body["error"]


async def test_memory_bomb_reports_its_peak(client: httpx.AsyncClient, account: Account) -> None:
    body = (await execute(client, account, wat.MEMORY_BOMB)).json()
    assert body["memory_peak_bytes"] > 120 * 1024 * 1024


@pytest.mark.parametrize("module", [wat.INFINITE_LOOP, wat.SLEEP_60])
async def test_spinning_or_sleeping_guest_times_out_at_the_deadline(
    client: httpx.AsyncClient, account: Account, module: str
) -> None:
    started = time.monotonic()
    response = await execute(client, account, module)
    elapsed = time.monotonic() - started
    body = response.json()
    assert body["status"] == "timeout", body
    assert 1.0 <= elapsed < 1.0 + 1.5  # the test server's EXECUTION_TIMEOUT is 1 s


async def test_output_flood_keeps_exactly_the_cap(
    server_factory: ServerFactory, account: Account
) -> None:
    server = server_factory(max_output_size=CAP)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await execute(client, account, wat.FLOOD, params={"encoding": "base64"})
    body = response.json()
    assert body["status"] == "output_limit", body
    assert body["output_truncated"] is True
    assert len(base64.b64decode(body["output"])) == CAP


async def test_others_are_served_while_one_request_spins(
    server_factory: ServerFactory, account: Account
) -> None:
    # A long deadline, so "still spinning" below holds however loaded the machine is.
    server = server_factory(execution_timeout=10.0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        spinning = asyncio.create_task(execute(client, account, wat.INFINITE_LOOP))
        await asyncio.sleep(0.2)
        for _ in range(3):
            response = await execute(client, account, wat.HELLO)
            assert response.json()["status"] == "success"
        assert (await client.get("/health")).status_code == 200
        assert not spinning.done()
        assert (await spinning).json()["status"] == "timeout"


@pytest.mark.parametrize(
    ("module", "status", "code"),
    [
        (wat.COMPONENT_HEADER + b"\x01\x00", 422, "component_not_supported"),
        (b"this is neither wasm nor (wat", 422, "invalid_wasm"),
        (b"prog.wat", 422, "invalid_wasm"),  # curl -F wasm=prog.wat: the name, not the file
        (b"(module (func (i32.bogus)))", 422, "invalid_wat"),
        (
            b"""(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                  (func (export "_start")))""",
            422,
            "missing_memory_export",
        ),
        (b"\x00asm\x01\x00\x00\x00\x01\x05garbage", 422, "truncated_wasm"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", 422, "invalid_wasm"),
        (wat.UNKNOWN_IMPORT, 422, "unsupported_import"),
        (b"", 422, "empty_wasm"),
    ],
)
async def test_unacceptable_modules_are_refused_with_their_code(
    client: httpx.AsyncClient, account: Account, module: str | bytes, status: int, code: str
) -> None:
    response = await execute(client, account, module)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert problem["request_id"] == response.headers["X-Request-ID"]
    if code == "unsupported_import":
        assert "env.foo" in problem["detail"]
    if module == b"prog.wat":
        assert '"prog.wat"' in problem["detail"]
        assert "-F wasm=@prog.wat" in problem["detail"]
    if code == "invalid_wat":
        assert problem["detail"].endswith("(at line 1, column 16)")


async def test_missing_wasm_field(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        "/api/v1/execute", headers=account.headers, files={"input": ("in", b"x")}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "missing_wasm"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("args", "not json", "invalid_args"),
        ("args", '{"a": 1}', "invalid_args"),
        ("args", "[1, 2]", "invalid_args"),
        ("env", "[]", "invalid_env"),
        ("env", '{"A": 1}', "invalid_env"),
        ("env", '{"A=B": "c"}', "invalid_env"),
        ("stdin", "typo for input", "unknown_field"),
    ],
)
async def test_bad_form_fields(
    client: httpx.AsyncClient, account: Account, field: str, value: str, code: str
) -> None:
    response = await execute(client, account, wat.HELLO, data={field: value})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("deterministic", "t" * 65, "invalid_deterministic"),
        ("seed", "1" * 65, "invalid_seed"),
        ("max_fuel", "9" * 65, "invalid_max_fuel"),
        ("args", json.dumps(["a" * 70_000]), "invalid_args"),
        ("env", json.dumps({"A": "b" * 70_000}), "invalid_env"),
    ],
)
async def test_an_over_long_field_is_invalid_like_any_bad_value(
    client: httpx.AsyncClient, account: Account, field: str, value: str, code: str
) -> None:
    """Too long is one more way for a field to be bad: its own code, 400, not a 413."""
    response = await execute(client, account, wat.HELLO, data={field: value})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert "longer than the limit" in response.json()["detail"]


async def test_bad_forms_give_their_concurrency_slot_back(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    """Admission comes before the body: a form refused after it must not keep the slot."""
    server = server_factory()
    free = await create_account(migrated_database_url, tier="free")  # 2 concurrent runs
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for _ in range(3):
            refused = await execute(client, free, wat.HELLO, data={"args": "not json"})
            assert refused.status_code == 400
            assert refused.json()["code"] == "invalid_args"
            # The refusal reports the budget it spent, as a run does.
            assert "X-RateLimit-Remaining" in refused.headers
        response = await execute(client, free, wat.HELLO)
    assert response.status_code == 200, response.text


async def test_module_over_the_size_limit(server_factory: ServerFactory, account: Account) -> None:
    server = server_factory(max_wasm_size=1024)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await execute(client, account, wat.HELLO + " " * 2000)
    assert response.status_code == 413
    assert response.json()["code"] == "wasm_too_large"


async def test_input_over_the_size_limit(client: httpx.AsyncClient, account: Account) -> None:
    response = await execute(client, account, wat.ECHO, stdin=b"x" * (1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.json()["code"] == "input_too_large"


@pytest.mark.parametrize("encoding", ["rot13", "", "BASE64"])
async def test_base64_encoding_parameter_is_validated(
    client: httpx.AsyncClient, account: Account, encoding: str
) -> None:
    response = await execute(client, account, wat.HELLO, params={"encoding": encoding})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_request"
    assert response.json()["detail"] == "The request is not valid: query.encoding"


async def test_not_multipart(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post("/api/v1/execute", headers=account.headers, json={"wasm": "x"})
    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_media_type"
