"""Subscription tier queries over the seeded tiers."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

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
