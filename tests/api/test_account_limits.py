"""Limits belong to accounts: over HTTP, on SQLite and PostgreSQL, with the memory and Redis
limiters, every key of an account shares its tier's rate, quota and concurrency; a key's
own lower limits bind too; scopes, the key cap and the key-creation limit hold."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from tests.api import wat
from tests.api.test_rate_limits import run_hello, set_tier, wait_until_running
from tests.fixtures.app import Account, LiveServer, ServerFactory, create_account
from tests.web.helpers import new_email, sign_up
from wasmwiz.persistence import Database
from wasmwiz.ratelimit import ManualClock
from wasmwiz.services.admin import AdminService

pytestmark = pytest.mark.anyio


@pytest.fixture
def limited_server(
    server_factory: ServerFactory, backend: dict[str, Any], clock: ManualClock
) -> LiveServer:
    return server_factory(app_options={"clock": clock}, key_creations_per_minute=50, **backend)


def as_account(account: Account, key: str) -> Account:
    return Account(account.user_id, account.email, key, account.api_key_id)


async def new_key(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/keys", headers=account.headers, json={"name": "more", **body}
    )
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def test_the_11th_run_a_minute_is_refused_whichever_key_makes_it(
    limited_server: LiveServer, migrated_database_url: str, clock: ManualClock
) -> None:
    account = await create_account(migrated_database_url, tier="free")
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=30) as client:
        keys = [account] + [
            as_account(account, (await new_key(client, account))["key"]) for _ in range(2)
        ]
        for spent in range(1, 11):
            response = await run_hello(client, keys[spent % 3])
            assert response.status_code == 200, response.text
            assert response.headers["X-RateLimit-Remaining"] == str(10 - spent)
            assert response.headers["X-RateLimit-Scope"] == "account"
        for key in keys:
            refused = await run_hello(client, key)
            assert refused.status_code == 429
            assert refused.json()["code"] == "rate_limited"
            assert refused.json()["limit"] == "account"
            assert refused.headers["X-RateLimit-Scope"] == "account"
            assert "account's limit" in refused.json()["detail"]
        # A key made now starts with nothing of its own: the account's minute is spent.
        fresh = as_account(account, (await new_key(client, account))["key"])
        assert (await run_hello(client, fresh)).status_code == 429
        clock.advance(6)
        assert (await run_hello(client, fresh)).status_code == 200


async def test_the_third_concurrent_run_is_refused_across_keys(
    server_factory: ServerFactory, backend: dict[str, Any], migrated_database_url: str
) -> None:
    server = server_factory(execution_timeout=5.0, max_concurrent_executions=4, **backend)
    account = await create_account(migrated_database_url, tier="free")  # 2 at once
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        keys = [account] + [
            as_account(account, (await new_key(client, account))["key"]) for _ in range(2)
        ]
        slow = [
            asyncio.create_task(
                client.post(
                    "/api/v1/execute",
                    headers=key.headers,
                    files={"wasm": ("loop.wat", wat.INFINITE_LOOP.encode())},
                )
            )
            for key in keys[:2]
        ]
        await wait_until_running(client, 2)
        refused = await run_hello(client, keys[2])
        assert refused.status_code == 429
        assert refused.json()["code"] == "too_many_concurrent"
        assert refused.json()["limit"] == "account"
        assert refused.headers["X-RateLimit-Scope"] == "account"
        assert [r.json()["status"] for r in await asyncio.gather(*slow)] == ["timeout"] * 2
        assert (await run_hello(client, keys[2])).status_code == 200


async def test_a_key_with_its_own_lower_limit_is_refused_at_it(
    limited_server: LiveServer, migrated_database_url: str
) -> None:
    account = await create_account(migrated_database_url, tier="free")
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=30) as client:
        created = await new_key(client, account, scopes=["execute"], requests_per_minute=3)
        assert created["requests_per_minute"] == 3
        limited = as_account(account, created["key"])
        for spent in range(1, 4):
            response = await run_hello(client, limited)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Scope"] == "key"
            assert response.headers["X-RateLimit-Remaining"] == str(3 - spent)
        refused = await run_hello(client, limited)
        assert refused.status_code == 429
        assert refused.json()["limit"] == "key"
        assert refused.headers["X-RateLimit-Scope"] == "key"
        assert refused.headers["X-RateLimit-Limit"] == "3"
        # The refusal spent nothing of the account: its other key has the other seven.
        for _ in range(7):
            assert (await run_hello(client, account)).status_code == 200
        assert (await run_hello(client, account)).json()["limit"] == "account"


async def test_a_keys_own_concurrency_limit_binds(
    server_factory: ServerFactory, backend: dict[str, Any], migrated_database_url: str
) -> None:
    server = server_factory(execution_timeout=5.0, max_concurrent_executions=4, **backend)
    account = await create_account(migrated_database_url, tier="basic")  # 10 at once
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        limited = as_account(
            account, (await new_key(client, account, max_concurrent_executions=1))["key"]
        )
        slow = asyncio.create_task(
            client.post(
                "/api/v1/execute",
                headers=limited.headers,
                files={"wasm": ("loop.wat", wat.INFINITE_LOOP.encode())},
            )
        )
        await wait_until_running(client, 1)
        refused = await run_hello(client, limited)
        assert refused.json()["code"] == "too_many_concurrent"
        assert refused.json()["limit"] == "key"
        assert (await run_hello(client, account)).status_code == 200
        assert (await slow).json()["status"] == "timeout"


async def test_a_key_limit_above_the_accounts_is_refused(
    client: httpx.AsyncClient, migrated_database_url: str
) -> None:
    account = await create_account(migrated_database_url, tier="free")
    response = await client.post(
        "/api/v1/keys", headers=account.headers, json={"name": "x", "requests_per_minute": 11}
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_key_limit"


async def test_scopes_are_checked_per_route(
    client: httpx.AsyncClient, migrated_database_url: str
) -> None:
    account = await create_account(migrated_database_url)
    execute_only = as_account(account, (await new_key(client, account, scopes=["execute"]))["key"])

    refused = await client.post("/api/v1/keys", headers=execute_only.headers, json={"name": "x"})
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"
    for path in ("/api/v1/keys", "/api/v1/usage", "/api/v1/admin/tiers"):
        response = await client.get(path, headers=execute_only.headers)
        assert response.status_code == 403, path
        assert response.json()["code"] == "insufficient_scope"
    assert (await run_hello(client, execute_only)).status_code == 200

    reader = as_account(account, (await new_key(client, account))["key"])  # the default
    assert (await client.get("/api/v1/usage", headers=reader.headers)).status_code == 200
    assert (await run_hello(client, reader)).status_code == 200
    no_execute = as_account(account, (await new_key(client, account, scopes=["usage:read"]))["key"])
    refused = await run_hello(client, no_execute)
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"


async def test_a_key_grants_at_most_its_own_scopes(
    client: httpx.AsyncClient, migrated_database_url: str
) -> None:
    account = await create_account(migrated_database_url)
    manager = as_account(
        account, (await new_key(client, account, scopes=["execute", "keys:write"]))["key"]
    )
    wider = await client.post(
        "/api/v1/keys",
        headers=manager.headers,
        json={"name": "x", "scopes": ["execute", "usage:read"]},
    )
    assert wider.status_code == 403
    assert wider.json()["code"] == "insufficient_scope"
    narrower = await new_key(client, manager, scopes=["execute"])
    assert narrower["scopes"] == ["execute"]
    # Nobody but an administrator gets `admin`, not even with a key holding every scope.
    admin = await client.post(
        "/api/v1/keys", headers=account.headers, json={"name": "x", "scopes": ["admin"]}
    )
    assert admin.status_code == 403
    assert admin.json()["code"] == "insufficient_scope"


async def test_the_tiers_key_cap_holds_under_parallel_creation(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory(key_creations_per_minute=100)
    account = await create_account(migrated_database_url, tier="free")  # 5 keys, 1 made
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/keys", headers=account.headers, json={"name": f"k{n}"})
                for n in range(20)
            )
        )
        statuses = sorted(response.status_code for response in responses)
        assert statuses == [201] * 4 + [409] * 16
        capped = next(response for response in responses if response.status_code == 409)
        assert capped.json()["code"] == "key_limit_reached"
        listed = (await client.get("/api/v1/keys", headers=account.headers)).json()["items"]
        assert len(listed) == 5
        # A revoked key frees its place.
        revoked = next(key for key in listed if key["name"] != "test")
        await client.delete(f"/api/v1/keys/{revoked['id']}", headers=account.headers)
        assert (
            await client.post("/api/v1/keys", headers=account.headers, json={"name": "again"})
        ).status_code == 201


async def test_parallel_key_creation_gives_no_5xx(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory(key_creations_per_minute=100)
    account = await create_account(migrated_database_url, tier="pro")
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        responses = await asyncio.gather(
            *(
                client.post("/api/v1/keys", headers=account.headers, json={"name": f"k{n}"})
                for n in range(40)
            )
        )
        assert [response.status_code for response in responses] == [201] * 40
        listed = await client.get("/api/v1/keys?per_page=100", headers=account.headers)
        assert len(listed.json()["items"]) == 41


async def test_key_creation_is_rate_limited_per_account(
    server_factory: ServerFactory, backend: dict[str, Any], migrated_database_url: str
) -> None:
    server = server_factory(key_creations_per_minute=3, **backend)
    account = await create_account(migrated_database_url, tier="pro")
    other = await create_account(migrated_database_url, tier="pro")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for _ in range(3):
            await new_key(client, account)
        refused = await client.post("/api/v1/keys", headers=account.headers, json={"name": "x"})
        assert refused.status_code == 429
        assert refused.json()["code"] == "key_creation_rate_limited"
        assert int(refused.headers["Retry-After"]) >= 1
        await new_key(client, other)


async def test_api_calls_other_than_runs_share_one_budget_per_account(
    server_factory: ServerFactory, backend: dict[str, Any], migrated_database_url: str
) -> None:
    # Three calls a minute: reading usage, listing jobs and listing keys spend from one
    # budget, whichever of the account's keys makes them; runs spend their tier's instead.
    server = server_factory(api_requests_per_minute=3, **backend)
    # basic: a tier without a budget of its own, so the server's (pro has one).
    account = await create_account(migrated_database_url, tier="basic")
    other = await create_account(migrated_database_url, tier="basic")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        second = as_account(account, (await new_key(client, account))["key"])  # one call
        assert (await client.get("/api/v1/usage", headers=account.headers)).status_code == 200
        assert (await client.get("/api/v1/jobs", headers=second.headers)).status_code == 200
        refused = [
            await client.get(path, headers=key.headers)
            for path, key in (("/api/v1/keys", account), ("/api/v1/usage", second))
        ]
        ran = await run_hello(client, account)
        others = await client.get("/api/v1/usage", headers=other.headers)
    for response in refused:
        assert response.status_code == 429, response.text
        assert response.json()["code"] == "api_rate_limited"
        assert int(response.headers["Retry-After"]) >= 1
    assert ran.status_code == 200, ran.text
    assert others.status_code == 200


async def test_a_tier_with_a_budget_of_its_own_spends_it_on_the_api_and_the_pages(
    server_factory: ServerFactory, backend: dict[str, Any], migrated_database_url: str
) -> None:
    # The server's budget: 2 calls a minute. The tier "team" has 4 of its own (migration
    # 0013); basic has none, so the server's. The pages of a signed-in user on a tier
    # with one spend it too.
    server = server_factory(
        api_requests_per_minute=2, app_options={"clock": ManualClock(1_700_000_000.0)}, **backend
    )
    await _create_tier(migrated_database_url, "team", api_requests_per_minute=4)
    await set_tier(migrated_database_url, "free", api_requests_per_minute=3)
    team = await create_account(migrated_database_url, tier="team")
    basic = await create_account(migrated_database_url, tier="basic")
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as client,
        httpx.AsyncClient(base_url=server.url, timeout=30) as browser,
    ):
        teams = [await client.get("/api/v1/usage", headers=team.headers) for _ in range(5)]
        basics = [await client.get("/api/v1/usage", headers=basic.headers) for _ in range(3)]
        await sign_up(browser, new_email())  # a free account, signed in
        pages = [await browser.get("/usage") for _ in range(4)]
    assert [response.status_code for response in teams] == [200] * 4 + [429]
    assert "4 requests a minute" in teams[-1].json()["detail"]
    assert [response.status_code for response in basics] == [200, 200, 429]
    assert "2 requests a minute" in basics[-1].json()["detail"]
    assert [response.status_code for response in pages] == [200] * 3 + [429]


async def _create_tier(database_url: str, name: str, **limits: int) -> None:
    database = Database(database_url)
    try:
        async with database.writer() as session:
            await AdminService().create_tier(
                session,
                name,
                {
                    "requests_per_minute": 10,
                    "requests_per_day": 500,
                    "max_concurrent_executions": 2,
                    **limits,
                },
            )
            await session.commit()
    finally:
        await database.dispose()


async def test_revoke_all_leaves_no_working_key(
    limited_server: LiveServer, migrated_database_url: str
) -> None:
    account = await create_account(migrated_database_url, tier="pro")
    async with httpx.AsyncClient(base_url=limited_server.url, timeout=30) as client:
        keys = [account] + [
            as_account(account, (await new_key(client, account))["key"]) for _ in range(3)
        ]
        for key in keys:  # every key answered once, so each is in the key cache
            assert (await run_hello(client, key)).status_code == 200
        revoked = await client.post("/api/v1/keys/revoke-all", headers=account.headers)
        assert revoked.status_code == 200
        assert revoked.json() == {"revoked": 4}
        for key in keys:
            assert (await run_hello(client, key)).status_code == 401
            assert (await client.get("/api/v1/keys", headers=key.headers)).status_code == 401


async def test_revoke_all_reaches_another_replica_within_the_cache_lifetime(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    first = server_factory(api_key_cache_seconds=1)
    second = server_factory(api_key_cache_seconds=1)
    account = await create_account(migrated_database_url, tier="pro")
    async with (
        httpx.AsyncClient(base_url=first.url, timeout=30) as one,
        httpx.AsyncClient(base_url=second.url, timeout=30) as other,
    ):
        keys = [account] + [
            as_account(account, (await new_key(one, account))["key"]) for _ in range(2)
        ]
        for key in keys:  # the other replica has every key in its cache
            assert (await other.get("/api/v1/usage", headers=key.headers)).status_code == 200
        assert (await one.post("/api/v1/keys/revoke-all", headers=account.headers)).json() == {
            "revoked": 3
        }
        revoked_at = time.monotonic()
        for key in keys:
            while (await other.get("/api/v1/usage", headers=key.headers)).status_code != 401:
                assert time.monotonic() - revoked_at < 1 + 2, "still accepted past the cache TTL"
                await asyncio.sleep(0.05)
