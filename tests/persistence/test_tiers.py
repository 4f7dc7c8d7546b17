"""Subscription tier queries over the seeded tiers, and the limits a tier row may hold."""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence import Database, SubscriptionTier
from wasmwiz.persistence.repositories import tiers

pytestmark = pytest.mark.anyio


async def test_get_by_name(db_session: AsyncSession) -> None:
    pro = await tiers.get_by_name(db_session, "pro")
    assert pro is not None
    assert (pro.requests_per_minute, pro.requests_per_day) == (500, 50_000)
    assert pro.max_concurrent_executions == 50
    assert pro.max_fuel is None
    assert await tiers.get_by_name(db_session, "platinum") is None


async def test_get_by_id(db_session: AsyncSession) -> None:
    free = await tiers.get_by_name(db_session, "free")
    assert free is not None
    assert await tiers.get_by_id(db_session, free.id) is free
    assert await tiers.get_by_id(db_session, 999) is None


async def test_list_tiers_from_smallest_to_largest(db_session: AsyncSession) -> None:
    assert [tier.name for tier in await tiers.list_tiers(db_session)] == ["free", "basic", "pro"]


@pytest.mark.parametrize(
    "change",
    [
        {"requests_per_minute": 0},
        {"requests_per_day": 0},
        {"max_concurrent_executions": 0},
        {"max_fuel": 0},
        {"max_api_keys": 0},
        {"requests_per_minute": -5},
    ],
    ids=lambda change: next(iter(change)) + f"={next(iter(change.values()))}",
)
async def test_a_limit_below_one_is_refused_by_the_database(
    database: Database, change: dict[str, int]
) -> None:
    # A zero limit cannot be a rate-limit quota: every execution under the tier would
    # fail. The database refuses the row when the operator writes it (migration 0003).
    async with database.session() as session:
        with pytest.raises(IntegrityError):
            await session.execute(
                update(SubscriptionTier).where(SubscriptionTier.name == "free").values(**change)
            )
        await session.rollback()

    async with database.session() as session:
        free = await tiers.get_by_name(session, "free")
        assert free is not None
        assert free.requests_per_minute == 10  # unchanged
        # The boundary is allowed: one a minute, no fuel cap.
        free.requests_per_minute, free.max_fuel = 1, None
        await session.commit()


async def test_the_seeded_tiers_cap_live_keys(db_session: AsyncSession) -> None:
    caps = {tier.name: tier.max_api_keys for tier in await tiers.list_tiers(db_session)}
    assert caps == {"free": 5, "basic": 20, "pro": 100}


async def test_create_and_update_a_tier(db_session: AsyncSession) -> None:
    tiers.create(
        db_session,
        name="team",
        requests_per_minute=200,
        requests_per_day=20_000,
        max_concurrent_executions=20,
        max_api_keys=50,
    )
    await db_session.flush()
    assert await tiers.update(db_session, "team", requests_per_minute=300, max_fuel=10**9)
    assert not await tiers.update(db_session, "gold", requests_per_minute=1)
    team = await tiers.get_by_name(db_session, "team")
    assert team is not None
    assert (team.requests_per_minute, team.max_fuel, team.max_api_keys) == (300, 10**9, 50)
    tiers.create(
        db_session,
        name="team",
        requests_per_minute=1,
        requests_per_day=1,
        max_concurrent_executions=1,
    )
    with pytest.raises(IntegrityError):
        await db_session.flush()
