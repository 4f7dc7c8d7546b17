"""Public runtimes over real HTTP, on both databases: Lua and JavaScript by name, for anyone."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select

from tests.api import wat
from tests.api.test_batches import batch
from tests.api.test_modules import run, upload
from tests.fixtures.app import Account, LiveServer, ServerFactory, create_account
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import PublicRuntime
from wasmwiz.services.public_runtimes import bundled_runtimes

pytestmark = pytest.mark.anyio

LUA = (
    b'local t = {3, 1, 2}\ntable.sort(t)\nprint(string.format("lua %d %d %d", t[1], t[2], t[3]))\n'
)
JS = (
    b"class A { f(x) { return x * 2 } }\n"
    b"console.log('js', new A().f(21), JSON.stringify({a: [1]}))\n"
)
BUNDLED = {runtime.name: runtime for runtime in bundled_runtimes()}


@pytest.fixture
def runtime_server(server_factory: ServerFactory) -> LiveServer:
    return server_factory(install_bundled_runtimes=True)


async def runtime_rows(database_url: str) -> int:
    database = Database(database_url)
    try:
        async with database.session() as session:
            return await session.scalar(select(func.count()).select_from(PublicRuntime)) or 0
    finally:
        await database.dispose()


async def test_the_shipped_runtimes_are_listed_and_run_by_name(
    runtime_server: LiveServer, account: Account
) -> None:
    async with httpx.AsyncClient(base_url=runtime_server.url, timeout=60) as client:
        listed = await client.get("/api/v1/runtimes", headers=account.headers)
        lua = await run(client, account, module="lua", stdin=LUA)
        js = await run(client, account, module="quickjs", stdin=JS)
        pinned = await run(
            client, account, module=f"lua@{BUNDLED['lua'].version}", stdin=b"print(1 + 1)"
        )
        unknown_version = await run(client, account, module="lua@0.0.0", stdin=b"print(1)")

    assert listed.status_code == 200, listed.text
    items = {item["name"]: item for item in listed.json()["items"]}
    assert set(items) >= {"lua", "quickjs"}
    for name, item in items.items():
        if name in BUNDLED:
            assert item["id"] == f"sha256:{BUNDLED[name].sha256}"
            assert item["version"] == BUNDLED[name].version
            assert item["latest"] is True
            assert item["usage"] == "stdin"
    assert lua.json()["output"] == "lua 1 2 3\n", lua.text
    assert js.json()["output"] == 'js 42 {"a":[1]}\n', js.text
    assert pinned.json()["output"] == "2\n"
    assert unknown_version.status_code == 404
    assert unknown_version.json()["code"] == "module_not_found"


async def test_any_account_runs_a_runtime_by_its_digest_and_errors_are_exit_1(
    runtime_server: LiveServer, migrated_database_url: str
) -> None:
    other = await create_account(migrated_database_url, tier="free")
    digest = f"sha256:{BUNDLED['lua'].sha256}"
    async with httpx.AsyncClient(base_url=runtime_server.url, timeout=60) as client:
        by_digest = await run(client, other, module=digest, stdin=b'print("by digest")')
        failing = await run(client, other, module="lua", stdin=b'error("boom")')
        shown = await client.get(f"/api/v1/modules/{digest}", headers=other.headers)

    assert by_digest.json()["output"] == "by digest\n"
    assert failing.json()["status"] == "exit_nonzero"
    assert failing.json()["exit_code"] == 1
    assert "boom" in failing.json()["stderr"]
    # A runtime is run by anyone, but it is not one of the account's stored modules.
    assert shown.status_code == 404


async def test_an_account_s_own_name_comes_before_a_runtime_s(
    runtime_server: LiveServer, account: Account
) -> None:
    async with httpx.AsyncClient(base_url=runtime_server.url, timeout=60) as client:
        await upload(client, account, wat.printing("mine\n"), name="lua")
        mine = await run(client, account, module="lua")
        pinned = await run(
            client, account, module=f"lua@{BUNDLED['lua'].version}", stdin=b"print('runtime')"
        )

    assert mine.json()["output"] == "mine\n"
    assert pinned.json()["output"] == "runtime\n"


async def test_a_batch_of_lua_programs(runtime_server: LiveServer, account: Account) -> None:
    programs = [{"stdin": f"print({i} * {i})"} for i in range(5)]
    async with httpx.AsyncClient(base_url=runtime_server.url, timeout=60) as client:
        response = await batch(client, account, programs, module="lua")

    assert [r["output"] for r in response.json()["results"]] == [f"{i * i}\n" for i in range(5)]


async def test_replicas_install_each_version_once(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server_factory(install_bundled_runtimes=True)
    server_factory(install_bundled_runtimes=True)

    assert await runtime_rows(migrated_database_url) == len(BUNDLED)
