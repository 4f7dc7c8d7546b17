"""Stored modules over real HTTP, on both databases: upload, list, names, runs by reference."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.api import wat
from tests.api.test_rate_limits import set_tier
from tests.fixtures.app import Account, ServerFactory, create_account
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import WasmBlob
from wasmwiz.sandbox import load_example

pytestmark = pytest.mark.anyio

ECHO = load_example("echo")


def digest_id(module: str | bytes) -> str:
    data = module.encode() if isinstance(module, str) else module
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def upload(
    client: httpx.AsyncClient, account: Account, module: str | bytes, name: str | None = None
) -> httpx.Response:
    data = module.encode() if isinstance(module, str) else module
    return await client.post(
        "/api/v1/modules",
        headers=account.headers,
        files={"wasm": ("module.wat", data)},
        data={"name": name} if name is not None else {},
    )


async def run(
    client: httpx.AsyncClient, account: Account, *, stdin: bytes = b"", **fields: Any
) -> httpx.Response:
    files: dict[str, Any] = {"input": ("input.bin", stdin)}
    if "wasm" in fields:
        files["wasm"] = ("module.wat", fields.pop("wasm"))
    return await client.post("/api/v1/execute", headers=account.headers, files=files, data=fields)


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """A run's response without what differs between two runs of the same request."""
    return {k: v for k, v in body.items() if k not in ("execution_id", "duration_ms")}


async def blob_count(database_url: str) -> int:
    database = Database(database_url)
    try:
        async with database.session() as session:
            return await session.scalar(select(func.count()).select_from(WasmBlob)) or 0
    finally:
        await database.dispose()


async def test_upload_describes_the_module_and_is_idempotent(
    client: httpx.AsyncClient, account: Account
) -> None:
    first = await upload(client, account, wat.HELLO, name="hello")
    again = await upload(client, account, wat.HELLO)

    assert first.status_code == 201, first.text
    body = first.json()
    assert body["id"] == digest_id(wat.HELLO)
    assert body["size"] == len(wat.HELLO.encode())
    assert body["names"] == ["hello"]
    assert body["is_command"] is True
    assert {"module": "wasi_snapshot_preview1", "name": "fd_write", "kind": "func"} in body[
        "imports"
    ]
    assert {"name": "_start", "kind": "func"} in body["exports"]
    assert first.headers["X-RateLimit-Limit"]
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert (await client.get(f"/api/v1/modules/{body['id']}", headers=account.headers)).json() == (
        body
    )
    assert (await client.get("/api/v1/modules/hello", headers=account.headers)).json() == body


async def test_a_run_by_reference_is_the_run_of_the_uploaded_bytes(
    client: httpx.AsyncClient, account: Account
) -> None:
    module_id = (await upload(client, account, ECHO, name="echo")).json()["id"]
    cases: list[dict[str, Any]] = [
        {"stdin": b"hello by reference\n"},
        {"stdin": b"", "args": '["a", "b"]', "env": '{"K": "V"}'},
        {"stdin": b"x" * 100, "max_fuel": "5"},  # fuel_exhausted, as a failure outcome
    ]
    for case in cases:
        uploaded = await run(client, account, wasm=ECHO, **case)
        by_id = await run(client, account, module=module_id, **case)
        by_name = await run(client, account, module="echo", **case)

        assert uploaded.status_code == by_id.status_code == by_name.status_code == 200
        assert comparable(by_id.json()) == comparable(uploaded.json())
        assert comparable(by_name.json()) == comparable(uploaded.json())


async def test_a_name_moves_and_runs_follow_it(client: httpx.AsyncClient, account: Account) -> None:
    await upload(client, account, wat.printing("v1\n"), name="grader")
    new = (await upload(client, account, wat.printing("v2\n"))).json()
    assert (await run(client, account, module="grader")).json()["output"] == "v1\n"

    moved = await client.put(
        "/api/v1/modules/names/grader", headers=account.headers, json={"module": new["id"]}
    )

    assert moved.status_code == 200, moved.text
    assert moved.json()["names"] == ["grader"]
    assert (await run(client, account, module="grader")).json()["output"] == "v2\n"
    removed = await client.delete("/api/v1/modules/names/grader", headers=account.headers)
    assert removed.status_code == 204
    gone = await run(client, account, module="grader")
    assert gone.status_code == 404
    assert gone.json()["code"] == "module_not_found"
    assert (await run(client, account, module=new["id"])).json()["output"] == "v2\n"


async def test_deleting_a_module_drops_it_and_its_bytes(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    module_id = (await upload(client, account, wat.printing("temporary\n"), name="t")).json()["id"]
    assert await blob_count(migrated_database_url) == 1

    deleted = await client.delete(f"/api/v1/modules/{module_id}", headers=account.headers)

    assert deleted.status_code == 204
    for reference in (module_id, "t"):
        shown = await client.get(f"/api/v1/modules/{reference}", headers=account.headers)
        assert shown.status_code == 404
        assert shown.json()["code"] == "module_not_found"
    ran = await run(client, account, module=module_id)
    assert ran.status_code == 404
    assert ran.json()["code"] == "module_not_found"
    assert await blob_count(migrated_database_url) == 0


async def test_another_account_s_digest_is_not_found(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    module_id = (await upload(client, account, wat.printing("mine\n"), name="mine")).json()["id"]
    other = await create_account(migrated_database_url)

    for reference in (module_id, "mine"):
        shown = await client.get(f"/api/v1/modules/{reference}", headers=other.headers)
        assert shown.status_code == 404
        assert shown.json()["code"] == "module_not_found"
        ran = await run(client, other, module=reference)
        assert ran.status_code == 404
        assert ran.json()["code"] == "module_not_found"
    taken = await client.put(
        "/api/v1/modules/names/stolen", headers=other.headers, json={"module": module_id}
    )
    assert taken.status_code == 404
    listed = await client.get("/api/v1/modules", headers=other.headers)
    assert listed.json() == {"items": [], "next_cursor": None}


async def test_pages_list_every_module_once_newest_first(
    client: httpx.AsyncClient, account: Account
) -> None:
    ids = [(await upload(client, account, wat.printing(f"{i}\n"))).json()["id"] for i in range(5)]

    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = (await client.get("/api/v1/modules", headers=account.headers, params=params)).json()
        pages += 1
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert sorted(seen) == sorted(ids)
    assert seen[0] == ids[-1]
    bad = await client.get("/api/v1/modules", headers=account.headers, params={"cursor": "x!"})
    assert bad.status_code == 422
    assert bad.json()["code"] == "invalid_request"


@pytest.mark.parametrize(
    ("quota", "code"),
    [
        ({"max_stored_modules": 1}, "storage_quota_exceeded"),
        ({"max_stored_module_bytes": 600}, "storage_quota_exceeded"),
    ],
    ids=["count", "bytes"],
)
async def test_a_full_storage_quota_is_refused(
    server_factory: ServerFactory,
    migrated_database_url: str,
    quota: dict[str, int],
    code: str,
) -> None:
    await set_tier(migrated_database_url, "free", **quota)
    account = await create_account(migrated_database_url, tier="free")
    server = server_factory()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        first = await upload(client, account, wat.printing("first\n"))
        second = await upload(client, account, wat.printing("second, which does not fit\n"))
        again = await upload(client, account, wat.printing("first\n"))

    assert first.status_code == 201, first.text
    assert second.status_code == 403
    assert second.json()["code"] == code
    assert again.status_code == 200  # already stored: costs no quota


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"wasm": wat.HELLO.encode(), "module": "hello"}, 400, "wasm_and_module"),
        ({"module": "sha256:abc"}, 400, "invalid_module_reference"),
        ({"module": "Not A Name"}, 400, "invalid_module_reference"),
        ({"module": "x" * 65}, 400, "invalid_module_reference"),
        ({}, 400, "missing_wasm"),
        ({"module": "sha256:" + "0" * 64}, 404, "module_not_found"),
    ],
    ids=["both", "short-digest", "bad-name", "long-name", "neither", "unknown"],
)
async def test_bad_references_are_refused_with_their_code(
    client: httpx.AsyncClient, account: Account, fields: dict[str, Any], status: int, code: str
) -> None:
    response = await run(client, account, **fields)

    assert response.status_code == status, response.text
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    ("module", "name", "status", "code"),
    [
        (wat.HELLO, "Bad Name", 400, "invalid_module_name"),
        (wat.HELLO, "sha256:" + "0" * 57, 400, "invalid_module_name"),
        ("(module (func (i32.bogus)))", None, 422, "invalid_wat"),
        (b"", None, 422, "empty_wasm"),
    ],
    ids=["bad-name", "name-like-an-id", "bad-wat", "empty"],
)
async def test_bad_uploads_are_refused_and_store_nothing(
    client: httpx.AsyncClient,
    account: Account,
    module: str | bytes,
    name: str | None,
    status: int,
    code: str,
) -> None:
    response = await upload(client, account, module, name=name)

    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    listed = await client.get("/api/v1/modules", headers=account.headers)
    assert listed.json()["items"] == []


async def test_two_replicas_see_the_same_modules(
    server_factory: ServerFactory, account: Account
) -> None:
    one, two = server_factory(), server_factory()
    async with (
        httpx.AsyncClient(base_url=one.url, timeout=30) as first,
        httpx.AsyncClient(base_url=two.url, timeout=30) as second,
    ):
        module_id = (await upload(first, account, wat.printing("shared\n"), name="s")).json()["id"]
        by_id = await run(second, account, module=module_id)
        by_name = await run(second, account, module="s")
        deleted = await second.delete(f"/api/v1/modules/{module_id}", headers=account.headers)
        gone = await run(first, account, module=module_id)

    assert by_id.json()["output"] == by_name.json()["output"] == "shared\n"
    assert deleted.status_code == 204
    assert gone.status_code == 404
