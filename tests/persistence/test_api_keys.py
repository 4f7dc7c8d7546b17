"""API key queries, above all the one-query lookup that authenticates each request."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.persistence.factories import count_queries, make_key, make_user
from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import api_keys

pytestmark = pytest.mark.anyio

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


async def test_get_by_hash_loads_key_user_and_tier_in_one_query(database: Database) -> None:
    async with database.session() as session:
        user = await make_user(session, email="ada@example.com", tier="pro")
        key = await make_key(session, user)
        await session.commit()

    async with database.session() as session:
        with count_queries(database.engine) as queries:
            found = await api_keys.get_by_hash(session, key.key_hash)
            assert found is not None
            assert found.id == key.id
            assert found.user.email == "ada@example.com"
            assert found.user.tier.name == "pro"
            assert found.user.tier.requests_per_minute == 500
        assert len(queries) == 1
        assert await api_keys.get_by_hash(session, "0" * 64) is None


async def test_get_by_hash_returns_revoked_keys_for_the_caller_to_judge(
    db_session: AsyncSession,
) -> None:
    key = await make_key(db_session, await make_user(db_session))
    assert await api_keys.revoke(db_session, key.id, now=NOW)
    found = await api_keys.get_by_hash(db_session, key.key_hash)
    assert found is not None
    assert found.revoked_at == NOW


async def test_key_hashes_are_unique(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    key = await make_key(db_session, user)
    api_keys.create(db_session, user_id=user.id, name="copy", prefix="ww_x", key_hash=key.key_hash)
    with pytest.raises(IntegrityError):
        await db_session.flush()


async def test_get_by_id_optionally_checks_the_owner(db_session: AsyncSession) -> None:
    owner = await make_user(db_session)
    key = await make_key(db_session, owner)
    other = await make_user(db_session)
    assert await api_keys.get_by_id(db_session, key.id) is key
    assert await api_keys.get_by_id(db_session, key.id, user_id=owner.id) is key
    assert await api_keys.get_by_id(db_session, key.id, user_id=other.id) is None
    assert await api_keys.get_by_id(db_session, uuid.uuid4()) is None


async def test_list_for_user_newest_first_with_paging(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    other = await make_user(db_session)
    await make_key(db_session, other, name="not mine")
    keys = []
    for i in range(5):
        key = await make_key(db_session, user, name=f"k{i}")
        key.created_at = NOW + timedelta(minutes=i)
        keys.append(key)
    await db_session.flush()
    await api_keys.revoke(db_session, keys[4].id, now=NOW)

    everything = await api_keys.list_for_user(db_session, user.id)
    assert [key.name for key in everything] == ["k4", "k3", "k2", "k1", "k0"]
    page = await api_keys.list_for_user(db_session, user.id, limit=2, offset=1)
    assert [key.name for key in page] == ["k3", "k2"]
    live = await api_keys.list_for_user(db_session, user.id, include_revoked=False)
    assert [key.name for key in live] == ["k3", "k2", "k1", "k0"]


async def test_revoke_once_and_only_by_the_owner(db_session: AsyncSession) -> None:
    owner = await make_user(db_session)
    other = await make_user(db_session)
    key = await make_key(db_session, owner)
    assert not await api_keys.revoke(db_session, key.id, user_id=other.id, now=NOW)
    assert await api_keys.revoke(db_session, key.id, user_id=owner.id, now=NOW)
    assert not await api_keys.revoke(db_session, key.id, now=NOW + timedelta(hours=1))
    assert not await api_keys.revoke(db_session, uuid.uuid4())
    reloaded = await api_keys.get_by_hash(db_session, key.key_hash)
    assert reloaded is not None
    assert reloaded.revoked_at == NOW


async def test_touch_last_used_writes_at_most_once_per_interval(db_session: AsyncSession) -> None:
    key = await make_key(db_session, await make_user(db_session))
    interval = timedelta(minutes=1)
    assert await api_keys.touch_last_used(db_session, key.id, now=NOW, min_interval=interval)
    later = NOW + timedelta(seconds=30)
    assert not await api_keys.touch_last_used(db_session, key.id, now=later, min_interval=interval)
    later = NOW + timedelta(seconds=61)
    assert await api_keys.touch_last_used(db_session, key.id, now=later, min_interval=interval)
    assert await api_keys.touch_last_used(db_session, key.id, now=later)
    assert not await api_keys.touch_last_used(db_session, uuid.uuid4(), now=later)
    reloaded = await api_keys.get_by_hash(db_session, key.key_hash)
    assert reloaded is not None
    assert reloaded.last_used_at == later
