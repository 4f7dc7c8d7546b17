"""User queries: creation, lookups, listing with tiers, and flag updates."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tests.persistence.factories import count_queries, make_user
from wasmwiz.persistence import Database
from wasmwiz.persistence.repositories import tiers, users

pytestmark = pytest.mark.anyio


async def test_create_stores_the_email_lower_cased(db_session: AsyncSession) -> None:
    free = await tiers.get_by_name(db_session, "free")
    assert free is not None
    user = users.create(db_session, email="  Ada@Example.COM ", tier_id=free.id)
    assert user.id is not None  # known before the flush, to reference from other rows
    await db_session.flush()
    assert user.email == "ada@example.com"
    assert user.password_hash is None
    assert (user.is_active, user.is_admin) == (True, False)


async def test_a_taken_email_fails_at_flush(db_session: AsyncSession) -> None:
    await make_user(db_session, email="ada@example.com")
    free = await tiers.get_by_name(db_session, "free")
    assert free is not None
    users.create(db_session, email="ADA@example.com", tier_id=free.id)
    with pytest.raises(IntegrityError):
        await db_session.flush()


async def test_get_by_email_ignores_case_and_loads_the_tier(database: Database) -> None:
    async with database.session() as session:
        created = await make_user(session, email="ada@example.com", tier="basic")
        await session.commit()
    async with database.session() as session:
        with count_queries(database.engine) as queries:
            user = await users.get_by_email(session, "ADA@Example.com")
            assert user is not None
            assert user.id == created.id
            assert user.tier.name == "basic"
        assert len(queries) == 1
        assert await users.get_by_email(session, "nobody@example.com") is None


async def test_get_by_id(db_session: AsyncSession) -> None:
    created = await make_user(db_session)
    found = await users.get_by_id(db_session, created.id)
    assert found is created
    assert found.tier.name == "free"
    assert await users.get_by_id(db_session, uuid.uuid4()) is None


async def test_list_users_oldest_first_with_paging(db_session: AsyncSession) -> None:
    created = [await make_user(db_session, email=f"u{i}@example.com") for i in range(5)]
    page = await users.list_users(db_session, limit=2, offset=1)
    assert [user.email for user in page] == ["u1@example.com", "u2@example.com"]
    assert all(user.tier.name == "free" for user in page)
    assert len(await users.list_users(db_session)) == len(created)
    assert await users.count_users(db_session) == 5


async def test_set_tier(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    pro = await tiers.get_by_name(db_session, "pro")
    assert pro is not None
    assert await users.set_tier(db_session, user.id, pro.id)
    reloaded = await users.get_by_id(db_session, user.id)
    assert reloaded is not None
    assert reloaded.tier.name == "pro"
    assert not await users.set_tier(db_session, uuid.uuid4(), pro.id)


async def test_set_active_and_admin(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    assert await users.set_active(db_session, user.id, False)
    assert await users.set_admin(db_session, user.id, True)
    reloaded = await users.get_by_id(db_session, user.id)
    assert reloaded is not None
    assert (reloaded.is_active, reloaded.is_admin) == (False, True)
    assert not await users.set_active(db_session, uuid.uuid4(), True)
    assert not await users.set_admin(db_session, uuid.uuid4(), True)
