"""Every way a request can fail authentication gets 401 (or 403), and keys never leak."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import update

from tests.api import wat
from tests.fixtures.app import Account, ServerFactory
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import ApiKey, User

pytestmark = pytest.mark.anyio


async def post(client: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    return await client.post(
        "/api/v1/execute", headers=headers, files={"wasm": ("m.wat", wat.HELLO.encode())}
    )


async def set_key(database_url: str, key_id: uuid.UUID, **values: object) -> None:
    database = Database(database_url)
    async with database.session() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key_id).values(**values))
        await session.commit()
    await database.dispose()


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-wasmwiz-key"},
        {"Authorization": "Bearer ww_" + "A" * 43},
    ],
    ids=["missing", "empty", "basic", "bearer-without-key", "malformed", "unknown"],
)
async def test_bad_credentials_are_refused(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    assert_unauthorized(await post(client, headers))


async def test_revoked_key_is_refused(
    server_factory: ServerFactory, account: Account, migrated_database_url: str
) -> None:
    # With the key cache off (API_KEY_CACHE_SECONDS=0) a revocation made anywhere counts at
    # once; tests/perf_behaviour/test_key_cache.py covers the bound with the cache on.
    server = server_factory(api_key_cache_seconds=0)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        assert (await post(client, account.headers)).status_code == 200
        await set_key(migrated_database_url, account.api_key_id, revoked_at=datetime.now(UTC))
        response = await post(client, account.headers)
    assert_unauthorized(response)
    assert "revoked" in response.json()["detail"]


async def test_expired_key_is_refused(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    expired = datetime.now(UTC) - timedelta(seconds=1)
    await set_key(migrated_database_url, account.api_key_id, expires_at=expired)
    response = await post(client, account.headers)
    assert_unauthorized(response)
    assert "expired" in response.json()["detail"]


async def test_key_of_an_inactive_user_is_forbidden(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    database = Database(migrated_database_url)
    async with database.session() as session:
        await session.execute(
            update(User).where(User.id == account.user_id).values(is_active=False)
        )
        await session.commit()
    await database.dispose()
    response = await post(client, account.headers)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


async def test_unauthenticated_upload_is_not_read(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/v1/execute",
        files={"wasm": ("big.wasm", b"\0" * (8 * 1024 * 1024))},
    )
    assert_unauthorized(response)


async def test_keys_never_appear_in_logs(
    client: httpx.AsyncClient, account: Account, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    await post(client, account.headers)
    await post(client, {"Authorization": f"Bearer {account.api_key}x"})
    assert caplog.records
    assert account.api_key not in caplog.text
    assert account.api_key[3:20] not in caplog.text
    access = [r for r in caplog.records if getattr(r, "event", None) == "access"]
    assert any(getattr(r, "key_id", None) == str(account.api_key_id) for r in access)


async def test_last_used_is_recorded_with_the_usage_batch(
    client: httpx.AsyncClient, account: Account, migrated_database_url: str
) -> None:
    assert (await post(client, account.headers)).status_code == 200
    database = Database(migrated_database_url)
    try:
        for _ in range(100):
            async with database.session() as session:
                key = await session.get(ApiKey, account.api_key_id)
                assert key is not None
                if key.last_used_at is not None:
                    break
            await asyncio.sleep(0.05)
    finally:
        await database.dispose()
    assert key.last_used_at is not None
    assert datetime.now(UTC) - key.last_used_at < timedelta(minutes=1)
