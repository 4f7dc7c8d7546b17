"""POST /api/v1/execute/batch over real HTTP, on both databases: one module, many cases."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api import wat
from tests.api.test_modules import comparable, run, upload
from tests.api.test_rate_limits import set_tier
from tests.fixtures.app import Account, ServerFactory, create_account
from wasmwiz.persistence import Database, UsageLog
from wasmwiz.sandbox import load_example

pytestmark = pytest.mark.anyio

ECHO = load_example("echo")
# Exits with the status its first argument spells (one digit), printing it to stderr first.
EXIT_WITH_ARG = """(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (drop (call $args (i32.const 16) (i32.const 64)))
    ;; argv[1]'s first byte, as a digit
    (call $exit (i32.sub (i32.load8_u (i32.load (i32.const 20))) (i32.const 48)))))"""


async def batch(
    client: httpx.AsyncClient,
    account: Account,
    cases: list[dict[str, Any]] | str,
    *,
    wasm: str | bytes | None = None,
    **fields: Any,
) -> httpx.Response:
    files: dict[str, Any] = {
        "cases": ("cases.json", cases if isinstance(cases, str) else json.dumps(cases))
    }
    if wasm is not None:
        files["wasm"] = ("module.wat", wasm.encode() if isinstance(wasm, str) else wasm)
    return await client.post(
        "/api/v1/execute/batch", headers=account.headers, files=files, data=fields
    )


async def usage_rows(database_url: str, batch_id: str) -> list[UsageLog]:
    database = Database(database_url)
    try:
        async with database.session() as session:
            rows = await session.scalars(
                select(UsageLog).where(UsageLog.batch_id == uuid.UUID(batch_id))
            )
            return list(rows)
    finally:
        await database.dispose()


async def test_results_come_in_order_and_equal_single_runs(
    client: httpx.AsyncClient, account: Account
) -> None:
    cases = [
        {"stdin": "first\n"},
        {"stdin_base64": base64.b64encode(b"\x00\xffbinary").decode()},
        {"stdin": "", "args": ["a", "b"], "env": {"K": "V"}},
        {"stdin": "third\n"},
    ]
    response = await batch(client, account, cases, wasm=ECHO)

    assert response.status_code == 200, response.text
    body = response.json()
    assert uuid.UUID(body["batch_id"])
    assert len(body["results"]) == len(cases)
    for case, result in zip(cases, body["results"], strict=True):
        stdin = (
            base64.b64decode(case["stdin_base64"])
            if "stdin_base64" in case
            else case["stdin"].encode()
        )
        fields = {"args": json.dumps(case["args"])} if "args" in case else {}
        if "env" in case:
            fields["env"] = json.dumps(case["env"])
        single = await run(client, account, wasm=ECHO, stdin=stdin, **fields)
        assert comparable(result) == comparable(single.json())


async def test_each_failure_outcome_is_the_single_run_s(
    client: httpx.AsyncClient, account: Account
) -> None:
    exits = await batch(client, account, [{"args": ["0"]}, {"args": ["3"]}], wasm=EXIT_WITH_ARG)
    fuel = await batch(client, account, [{"stdin": "x" * 100}] * 2, wasm=ECHO, max_fuel="5")
    spins = await batch(client, account, [{}, {}], wasm=wat.INFINITE_LOOP)

    assert [r["status"] for r in exits.json()["results"]] == ["success", "exit_nonzero"]
    assert [r["exit_code"] for r in exits.json()["results"]] == [0, 3]
    single = await run(client, account, wasm=EXIT_WITH_ARG, args='["3"]')
    assert comparable(exits.json()["results"][1]) == comparable(single.json())
    assert [r["status"] for r in fuel.json()["results"]] == ["fuel_exhausted"] * 2
    assert [r["status"] for r in spins.json()["results"]] == ["timeout"] * 2


async def test_a_stored_module_and_defaults(client: httpx.AsyncClient, account: Account) -> None:
    await upload(client, account, ECHO, name="echo")
    defaults = json.dumps({"stdin": "from the defaults\n", "args": ["x"]})

    response = await batch(
        client, account, [{}, {"stdin": "own\n"}], module="echo", defaults=defaults
    )

    assert response.status_code == 200, response.text
    outputs = [r["output"] for r in response.json()["results"]]
    assert outputs[0].startswith("from the defaults\n")
    assert outputs[1].startswith("own\n")


async def test_one_usage_record_per_case_carries_the_batch_id(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    response = await batch(client, account, [{"stdin": str(i)} for i in range(5)], wasm=ECHO)
    body = response.json()

    deadline = time.monotonic() + 10
    while len(rows := await usage_rows(migrated_database_url, body["batch_id"])) < 5:
        assert time.monotonic() < deadline, f"{len(rows)} usage rows"
        await asyncio.sleep(0.05)
    assert sorted(str(row.id) for row in rows) == sorted(r["execution_id"] for r in body["results"])
    assert {row.user_id for row in rows} == {account.user_id}


async def test_admission_is_all_or_nothing_and_says_what_fits(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    free = await create_account(migrated_database_url, tier="free")  # 10 a minute
    server = server_factory()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        refused = await batch(client, free, [{}] * 11, wasm=ECHO)
        fitting = await batch(client, free, [{}] * 10, wasm=ECHO)
        after = await batch(client, free, [{}] * 2, wasm=ECHO)

    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert refused.json()["fits"] == 10
    assert "A batch of 11 runs does not fit: 10 would." in refused.json()["detail"]
    assert fitting.status_code == 200  # the refusal spent nothing
    assert after.status_code == 429
    assert after.json()["fits"] == 0
    assert after.headers["Retry-After"]


@pytest.mark.parametrize(
    ("cases", "case", "fragment"),
    [
        ([{}, {}, {"args": "not a list"}], 2, "args"),
        ([{}, {"stdin": "a", "stdin_base64": "YQ=="}], 1, "not both"),
        ([{"stdin_base64": "%%%"}], 0, "base64"),
        ([{}, {"files": []}], 1, "unknown keys"),
        ([{}, 7], 1, "JSON object"),
        ([{"env": {"A=B": "c"}}], 0, "Invalid variable"),
        ([{}, {"stdin": 5}], 1, "`stdin` must be a string, not a number"),
        ([{"stdin_base64": None}], 0, "`stdin_base64` must be a string, not null"),
    ],
)
async def test_a_bad_case_is_refused_by_its_index_before_anything_runs(
    client: httpx.AsyncClient,
    account: Account,
    cases: list[Any],
    case: int,
    fragment: str,
) -> None:
    response = await batch(client, account, cases, wasm=ECHO)

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "invalid_cases"
    assert body["case"] == case
    assert fragment in body["detail"]
    usage = await client.get("/api/v1/usage", headers=account.headers)
    assert usage.json()["total"] == 0


@pytest.mark.parametrize(
    ("cases", "fields", "code"),
    [
        ("not json", {}, "invalid_cases"),
        ("[]", {}, "invalid_cases"),
        (json.dumps([{}] * 4), {}, "invalid_cases"),  # over MAX_BATCH_CASES=3
        ("[{}]", {"defaults": "[]"}, "invalid_cases"),
        ("[{}]", {"module": "echo", "with_wasm": True}, "wasm_and_module"),
        ("[{}]", {"module": "NOPE"}, "invalid_module_reference"),
        ("[{}]", {"module": "nothing-stored"}, "module_not_found"),
    ],
    ids=["not-json", "empty", "too-many", "bad-defaults", "both", "bad-ref", "unknown"],
)
async def test_bad_batches_are_refused_with_their_code(
    server_factory: ServerFactory,
    account: Account,
    cases: str,
    fields: dict[str, Any],
    code: str,
) -> None:
    server = server_factory(max_batch_cases=3)
    fields = dict(fields)  # the parameters are shared by every database's run
    wasm = ECHO if fields.pop("with_wasm", "module" not in fields) else None
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await batch(client, account, cases, wasm=wasm, **fields)

    assert response.json()["code"] == code, response.text
    assert "case" not in response.json()


async def test_cases_not_started_within_the_batch_s_time_end_as_timeouts(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    free = await create_account(migrated_database_url, tier="free")  # 2 runs at once
    server = server_factory(batch_timeout=0.5)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await batch(client, free, [{}] * 3, wasm=wat.INFINITE_LOOP)

    results = response.json()["results"]
    assert [r["status"] for r in results] == ["timeout"] * 3
    assert [r["error"].startswith("not run:") for r in results] == [False, False, True]
    assert results[2]["duration_ms"] == 0


async def test_a_tier_change_is_seen_by_batches_too(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    await set_tier(migrated_database_url, "basic", requests_per_minute=3)
    basic = await create_account(migrated_database_url, tier="basic")
    server = server_factory()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        refused = await batch(client, basic, [{}] * 4, wasm=ECHO)

    assert refused.json()["fits"] == 3
