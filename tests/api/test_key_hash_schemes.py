"""API keys made before secrets were derived per purpose keep working, and move over.

Keys made up to 0.1.0 are stored as HMAC-SHA256 under API_SALT itself (hash scheme 1).
Such a key must still authenticate, over HTTP, against a real server; on its first use
it is rewritten under the derived key (scheme 2), and it keeps working after that, also
when the secret is configured under its new name, SECRET_KEY.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

import httpx
import pytest
from sqlalchemy import select

from tests.fixtures.app import TEST_SALT, ServerFactory, create_account
from wasmwiz.auth import HashScheme, hash_api_key
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import ApiKey
from wasmwiz.persistence.repositories import api_keys as key_repository

pytestmark = pytest.mark.anyio


async def insert_legacy_key(database_url: str, user_id: uuid.UUID) -> tuple[str, uuid.UUID]:
    """A key as 0.1.0 made it: HMAC-SHA256 under the raw API_SALT, hash_scheme 1."""
    plaintext = "ww_" + secrets.token_urlsafe(32)
    legacy = hmac.new(TEST_SALT.encode(), plaintext.encode(), hashlib.sha256).hexdigest()
    database = Database(database_url)
    try:
        async with database.session() as session:
            key = key_repository.create(
                session,
                user_id=user_id,
                name="from 0.1.0",
                prefix=plaintext[:11],
                key_hash=legacy,
                hash_scheme=HashScheme.LEGACY,
                scopes="execute usage:read keys:write",  # what 0004 gave existing keys
            )
            await session.commit()
    finally:
        await database.dispose()
    return plaintext, key.id


async def stored(database_url: str, key_id: uuid.UUID) -> tuple[str, int]:
    database = Database(database_url)
    try:
        async with database.session() as session:
            key = await session.scalar(select(ApiKey).where(ApiKey.id == key_id))
            assert key is not None
            return key.key_hash, key.hash_scheme
    finally:
        await database.dispose()


async def authenticated_get(url: str, plaintext: str) -> httpx.Response:
    """An authenticated request that runs nothing: the caller's usage report."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        return await client.get("/api/v1/usage", headers={"Authorization": f"Bearer {plaintext}"})


@pytest.mark.parametrize("configured_as", ["API_SALT", "SECRET_KEY"])
async def test_a_key_hashed_the_old_way_authenticates_and_is_rehashed(
    server_factory: ServerFactory, migrated_database_url: str, configured_as: str
) -> None:
    account = await create_account(migrated_database_url)
    plaintext, key_id = await insert_legacy_key(migrated_database_url, account.user_id)
    secret = {"api_salt": TEST_SALT} if configured_as == "API_SALT" else {"secret_key": TEST_SALT}
    server = server_factory(api_key_cache_seconds=0, **{"api_salt": "", **secret})

    first = await authenticated_get(server.url, plaintext)
    assert first.status_code == 200, first.text
    assert await stored(migrated_database_url, key_id) == (
        hash_api_key(plaintext, TEST_SALT, HashScheme.DERIVED),
        HashScheme.DERIVED,
    )
    assert (await authenticated_get(server.url, plaintext)).status_code == 200


async def test_new_keys_are_hashed_under_the_derived_key(
    live_server: object, migrated_database_url: str
) -> None:
    account = await create_account(migrated_database_url)

    key_hash, scheme = await stored(migrated_database_url, account.api_key_id)
    assert scheme == HashScheme.DERIVED
    assert key_hash == hash_api_key(account.api_key, TEST_SALT)
    assert key_hash != hash_api_key(account.api_key, TEST_SALT, HashScheme.LEGACY)


async def test_a_hash_is_only_accepted_under_the_scheme_it_is_stored_with(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    # A row claiming the derived scheme but holding the legacy digest is not a match:
    # each stored digest counts only for the scheme recorded with it.
    account = await create_account(migrated_database_url)
    plaintext, key_id = await insert_legacy_key(migrated_database_url, account.user_id)
    database = Database(migrated_database_url)
    try:
        async with database.session() as session:
            key = await session.get(ApiKey, key_id)
            assert key is not None
            key.hash_scheme = HashScheme.DERIVED
            await session.commit()
    finally:
        await database.dispose()
    server = server_factory(api_key_cache_seconds=0)

    assert (await authenticated_get(server.url, plaintext)).status_code == 401


async def test_a_different_secret_authenticates_no_key_under_either_scheme(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    account = await create_account(migrated_database_url)
    legacy, _ = await insert_legacy_key(migrated_database_url, account.user_id)
    server = server_factory(api_salt="another-secret-" + "z" * 40)

    for plaintext in (account.api_key, legacy):
        assert (await authenticated_get(server.url, plaintext)).status_code == 401


async def test_scheme_1_keeps_every_key_readable_by_the_release_before(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    # API_KEY_HASH_SCHEME=1, for an upgrade that may still be rolled back: keys stay (or
    # are moved back to) the digest 0.1.0 looks up, and new keys are made that way.
    account = await create_account(migrated_database_url)  # scheme 2
    legacy, legacy_id = await insert_legacy_key(migrated_database_url, account.user_id)
    server = server_factory(api_key_cache_seconds=0, api_key_hash_scheme=1)

    for plaintext, key_id in ((legacy, legacy_id), (account.api_key, account.api_key_id)):
        assert (await authenticated_get(server.url, plaintext)).status_code == 200
        assert await stored(migrated_database_url, key_id) == (
            hash_api_key(plaintext, TEST_SALT, HashScheme.LEGACY),
            HashScheme.LEGACY,
        )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        created = await client.post(
            "/api/v1/keys",
            headers={"Authorization": f"Bearer {legacy}"},
            json={"name": "made under scheme 1"},
        )
    assert created.status_code == 201, created.text
    new_key = created.json()["key"]
    new_id = uuid.UUID(created.json()["id"])
    assert await stored(migrated_database_url, new_id) == (
        hash_api_key(new_key, TEST_SALT, HashScheme.LEGACY),
        HashScheme.LEGACY,
    )
