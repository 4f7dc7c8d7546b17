"""The admin API over HTTP on SQLite and PostgreSQL: tiers and accounts, who may use it,
parallel edits, and a running server applying a tier edited elsewhere within seconds."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from tests.api import wat
from tests.api.test_rate_limits import run_hello
from tests.fixtures.app import TEST_SALT, Account, ServerFactory, create_account
from wasmwiz.api.admin import TierChange, TierCreate, TierOut
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import UsageLog, User, WebSession
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.admin import AdminService, tier_limit_fields
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.principals import Scope

pytestmark = pytest.mark.anyio

ALL_SCOPES = frozenset(Scope)


async def create_admin(database_url: str) -> Account:
    database = Database(database_url)
    try:
        async with database.writer() as session:
            user = await AccountService().create_user(
                session, f"admin-{uuid.uuid4().hex[:8]}@example.com", is_admin=True
            )
            created = await ApiKeyService(TEST_SALT).create(
                session, user.id, name="admin", scopes=ALL_SCOPES
            )
            await session.commit()
    finally:
        await database.dispose()
    return Account(user.id, user.email, created.plaintext, created.key.id)


TEAM = {
    "name": "team",
    "requests_per_minute": 3,
    "requests_per_day": 1000,
    "max_concurrent_executions": 2,
    "max_api_keys": 7,
}


async def test_admin_creates_and_edits_a_tier_and_moves_an_account(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory()
    admin = await create_admin(migrated_database_url)
    user = await create_account(migrated_database_url, tier="free")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        created = await client.post("/api/v1/admin/tiers", headers=admin.headers, json=TEAM)
        assert created.status_code == 201, created.text
        assert {name: created.json()[name] for name in TEAM} == TEAM
        assert created.json()["max_fuel"] is None
        again = await client.post("/api/v1/admin/tiers", headers=admin.headers, json=TEAM)
        assert again.status_code == 409
        assert again.json()["code"] == "tier_exists"
        names = [
            tier["name"]
            for tier in (await client.get("/api/v1/admin/tiers", headers=admin.headers)).json()[
                "items"
            ]
        ]
        assert "team" in names

        assert (await run_hello(client, user)).headers["X-RateLimit-Limit"] == "10"
        moved = await client.patch(
            f"/api/v1/admin/users/{user.user_id}", headers=admin.headers, json={"tier": "team"}
        )
        assert moved.status_code == 200
        assert moved.json()["tier"] == "team"
        # This server forgets its cached principal at once: the next run has the new limit.
        assert (await run_hello(client, user)).headers["X-RateLimit-Limit"] == "3"

        edited = await client.patch(
            "/api/v1/admin/tiers/team", headers=admin.headers, json={"requests_per_minute": 5}
        )
        assert edited.status_code == 200
        assert edited.json()["requests_per_minute"] == 5
        assert (await run_hello(client, user)).headers["X-RateLimit-Limit"] == "5"
        # A new tier has the default job limits; an administrator sets its own.
        assert created.json()["job_timeout_seconds"] == 5
        jobs = {"job_timeout_seconds": 20, "max_queued_jobs": 7, "job_result_seconds": 600}
        with_jobs = await client.patch("/api/v1/admin/tiers/team", headers=admin.headers, json=jobs)
        assert {name: with_jobs.json()[name] for name in jobs} == jobs
        # The server's request budget until the tier has its own, and again after null.
        assert created.json()["api_requests_per_minute"] is None
        budget = {"api_requests_per_minute": 1200, "api_requests_per_day": 90_000}
        with_budget = await client.patch(
            "/api/v1/admin/tiers/team", headers=admin.headers, json=budget
        )
        assert {name: with_budget.json()[name] for name in budget} == budget
        cleared = await client.patch(
            "/api/v1/admin/tiers/team",
            headers=admin.headers,
            json={"api_requests_per_minute": None},
        )
        assert cleared.json()["api_requests_per_minute"] is None
        assert cleared.json()["api_requests_per_day"] == 90_000

        bad = await client.patch(
            "/api/v1/admin/tiers/team", headers=admin.headers, json={"requests_per_minute": 0}
        )
        assert bad.status_code in (400, 422)
        missing = await client.patch(
            "/api/v1/admin/tiers/gold", headers=admin.headers, json={"requests_per_minute": 5}
        )
        assert missing.status_code == 404


def test_the_admin_api_reads_and_changes_every_limit_a_tier_has() -> None:
    # The CLI and the admin page take their fields from the model (tier_limit_fields);
    # the API's models are written out, so this keeps them from missing a limit.
    limits = set(tier_limit_fields())
    assert set(TierOut.model_fields) - {"name"} == limits
    assert set(TierChange.model_fields) == limits
    assert set(TierCreate.model_fields) - {"name"} == limits


async def test_an_administrator_sets_a_tiers_storage_quota_through_the_api(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory()
    admin = await create_admin(migrated_database_url)
    user = await create_account(migrated_database_url, tier="free")
    quota = {"max_stored_modules": 0, "max_stored_module_bytes": 1024}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        changed = await client.patch("/api/v1/admin/tiers/free", headers=admin.headers, json=quota)
        stored = await client.post(
            "/api/v1/modules",
            headers=user.headers,
            files={"wasm": ("hello.wat", wat.HELLO.encode())},
        )
    assert changed.status_code == 200, changed.text
    assert {name: changed.json()[name] for name in quota} == quota
    assert stored.status_code == 403, stored.text
    assert stored.json()["code"] == "storage_quota_exceeded"


async def test_only_an_administrators_admin_key_may_use_the_admin_api(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory()
    everyone = await create_account(migrated_database_url)
    admin = await create_admin(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        for headers in (everyone.headers, {}):
            response = await client.get("/api/v1/admin/users", headers=headers)
            assert response.status_code in (401, 403)
        refused = await client.get("/api/v1/admin/users", headers=everyone.headers)
        assert refused.json()["code"] == "insufficient_scope"
        # An administrator's ordinary key (no `admin` scope) is refused too.
        plain = await client.post("/api/v1/keys", headers=admin.headers, json={"name": "plain"})
        plain_headers = {"Authorization": f"Bearer {plain.json()['key']}"}
        refused = await client.get("/api/v1/admin/users", headers=plain_headers)
        assert refused.status_code == 403
        # Once the user is no longer an admin, its admin key stops working too.
        database = Database(migrated_database_url)
        try:
            async with database.writer() as session:
                await AccountService().set_admin(session, admin.email, False)
                await session.commit()
        finally:
            await database.dispose()
        deadline = time.monotonic() + 10
        while (await client.get("/api/v1/admin/users", headers=admin.headers)).status_code != 403:
            assert time.monotonic() < deadline, "the admin flag was not re-read"
            await asyncio.sleep(0.2)


async def test_users_are_listed_a_page_at_a_time(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory()
    admin = await create_admin(migrated_database_url)
    for _ in range(4):
        await create_account(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        first = (await client.get("/api/v1/admin/users?per_page=2", headers=admin.headers)).json()
        assert first["total"] == 5
        assert len(first["items"]) == 2
        assert first["next_page"] == 2
        last = (
            await client.get("/api/v1/admin/users?per_page=2&page=3", headers=admin.headers)
        ).json()
        assert len(last["items"]) == 1
        assert last["next_page"] is None


async def test_deleting_an_account_revokes_keys_ends_sessions_and_keeps_usage(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory()
    admin = await create_admin(migrated_database_url)
    user = await create_account(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await run_hello(client, user)).status_code == 200
        await asyncio.sleep(0.3)  # the usage batch is written
        deleted = await client.delete(f"/api/v1/admin/users/{user.user_id}", headers=admin.headers)
        assert deleted.status_code == 204
        assert (await run_hello(client, user)).status_code in (401, 403)
        assert (
            await client.delete(f"/api/v1/admin/users/{user.user_id}", headers=admin.headers)
        ).status_code == 404
        listed = (await client.get("/api/v1/admin/users", headers=admin.headers)).json()
        assert user.email not in [item["email"] for item in listed["items"]]
        own = await client.delete(f"/api/v1/admin/users/{admin.user_id}", headers=admin.headers)
        assert own.status_code == 400
    database = Database(migrated_database_url)
    try:
        async with database.session() as session:
            row = await session.get(User, user.user_id)
            assert row is not None
            assert row.deleted_at is not None
            assert row.email != user.email
            assert row.password_hash is None
            usage = await session.scalar(
                select(func.count()).select_from(UsageLog).where(UsageLog.user_id == user.user_id)
            )
            assert usage == 1
            sessions = await session.scalar(
                select(func.count())
                .select_from(WebSession)
                .where(WebSession.user_id == user.user_id)
            )
            assert sessions == 0
    finally:
        await database.dispose()


async def test_parallel_admin_edits_give_no_5xx(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory()
    admin = await create_admin(migrated_database_url)
    users = [await create_account(migrated_database_url, tier="free") for _ in range(5)]
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        requests = [
            client.patch(
                "/api/v1/admin/tiers/basic",
                headers=admin.headers,
                json={"requests_per_minute": 100 + n},
            )
            for n in range(20)
        ] + [
            client.patch(
                f"/api/v1/admin/users/{users[n % 5].user_id}",
                headers=admin.headers,
                json={"tier": ["basic", "pro"][n % 2]},
            )
            for n in range(20)
        ]
        responses = await asyncio.gather(*requests)
        assert [response.status_code for response in responses] == [200] * 40


async def test_a_running_server_applies_a_tier_edited_elsewhere_within_seconds(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory(api_key_cache_seconds=2)
    user = await create_account(migrated_database_url, tier="basic")
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await run_hello(client, user)).headers["X-RateLimit-Limit"] == "100"
        # Another replica (here: this test, like the CLI) edits the tier in the database.
        database = Database(migrated_database_url)
        try:
            async with database.writer() as session:
                await AdminService().update_tier(session, "basic", {"requests_per_minute": 40})
                await session.commit()
        finally:
            await database.dispose()
        edited_at = time.monotonic()
        while (await run_hello(client, user)).headers["X-RateLimit-Limit"] != "40":
            assert time.monotonic() - edited_at < 2 + 2, "not applied within the cache's TTL"
            await asyncio.sleep(0.1)
