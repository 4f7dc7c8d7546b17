"""The request's unit of work commits before the response leaves, and rolls back refusals.

A commit is made to fail for real: the test database gets a deferred foreign key that a
trigger on `api_keys` breaks, which SQLite and PostgreSQL check only at COMMIT. Had the
commit run after the response was sent (a `yield` dependency's default in FastAPI), the
client would read 201 or 303 for a key that was never stored.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, text

from tests.api.test_admin_api import create_admin
from tests.fixtures.app import Account, ServerFactory
from tests.web.helpers import new_email, page_csrf, sign_up
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import ApiKey

pytestmark = pytest.mark.anyio

_GUARD_TABLES = [
    "CREATE TABLE commit_guard_parent (id INTEGER PRIMARY KEY)",
    "CREATE TABLE commit_guard (parent INTEGER REFERENCES commit_guard_parent (id)"
    " DEFERRABLE INITIALLY DEFERRED)",
]
_SQLITE_TRIGGER = [
    "CREATE TRIGGER api_keys_fail_at_commit AFTER INSERT ON api_keys"
    " BEGIN INSERT INTO commit_guard VALUES (1); END",
]
_POSTGRES_TRIGGER = [
    "CREATE FUNCTION api_keys_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS"
    " $$ BEGIN INSERT INTO commit_guard VALUES (1); RETURN NEW; END $$",
    "CREATE TRIGGER api_keys_fail_at_commit AFTER INSERT ON api_keys"
    " FOR EACH ROW EXECUTE FUNCTION api_keys_fail_at_commit()",
]


async def _fail_key_commits(database: Database) -> None:
    """From now on every transaction that inserts an API key fails at COMMIT, not before."""
    trigger = _SQLITE_TRIGGER if database.is_sqlite else _POSTGRES_TRIGGER
    async with database.writer() as session:
        for statement in [*_GUARD_TABLES, *trigger]:
            await session.execute(text(statement))
        await session.commit()


async def _keys_named(database: Database, name: str) -> int:
    async with database.session() as session:
        count = await session.scalar(select(func.count()).where(ApiKey.name == name))
    return count or 0


async def test_a_commit_that_fails_is_the_api_clients_error(
    server_factory: ServerFactory, account: Account, database: Database
) -> None:
    server = server_factory()
    await _fail_key_commits(database)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.post("/api/v1/keys", headers=account.headers, json={"name": "lost"})
        assert response.status_code == 500, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == "internal_error"
        assert await _keys_named(database, "lost") == 0
        # The session was rolled back and closed: the next request is served normally.
        listed = await client.get("/api/v1/keys", headers=account.headers)
        assert listed.status_code == 200
        assert [key["name"] for key in listed.json()["items"]] == ["test"]


async def test_a_commit_that_fails_is_the_browsers_error(
    server_factory: ServerFactory, database: Database
) -> None:
    server = server_factory()
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as browser:
        await sign_up(browser, new_email())
        token = await page_csrf(browser)
        await _fail_key_commits(database)
        response = await browser.post(
            "/generate-key",
            data={"name": "lost", "csrf_token": token},
            headers={"accept": "text/html"},
        )
        # Not the 303 to the page that shows the new key: the key does not exist.
        assert response.status_code == 500, response.text
        assert await _keys_named(database, "lost") == 0


async def test_a_refused_request_rolls_back_what_it_flushed(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    """One PATCH moves an administrator to another tier (flushed) and deactivates the
    same account, which is refused (400): the tier change must not be committed."""
    server = server_factory()
    admin = await create_admin(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.patch(
            f"/api/v1/admin/users/{admin.user_id}",
            headers=admin.headers,
            json={"tier": "basic", "active": False},
        )
        assert response.status_code == 400, response.text
        listed = await client.get("/api/v1/admin/users", headers=admin.headers)
        (me,) = [item for item in listed.json()["items"] if item["id"] == str(admin.user_id)]
        assert me["tier"] == "free"


async def test_a_session_on_a_route_that_would_not_commit_it_is_refused() -> None:
    """A route outside UnitOfWorkRoute asking for the session would lose its writes:
    the dependency refuses before any state is read."""
    app = FastAPI()

    @app.post("/forgot")
    async def forgot(session: DatabaseSessionDep) -> None:
        raise AssertionError("not reached")

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        with pytest.raises(RuntimeError, match="does not end a unit of work"):
            await client.post("/forgot")
