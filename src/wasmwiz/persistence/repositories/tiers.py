"""Queries on subscription tiers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy import update as sql_update
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence.models import SubscriptionTier
from wasmwiz.persistence.repositories._rows import rowcount
from wasmwiz.persistence.types import utcnow

__all__ = ["create", "get_by_id", "get_by_name", "list_tiers", "update"]


def create(session: AsyncSession, *, name: str, **limits: object) -> SubscriptionTier:
    """Add a new tier to the session; a taken name is an IntegrityError at the flush."""
    now = utcnow()
    tier = SubscriptionTier(name=name, created_at=now, updated_at=now, **limits)
    session.add(tier)
    return tier


async def update(session: AsyncSession, name: str, **limits: object) -> bool:
    """Change a tier's limits; False if there is no tier of that name."""
    result = await session.execute(
        sql_update(SubscriptionTier)
        .where(SubscriptionTier.name == name)
        .values(updated_at=utcnow(), **limits)
    )
    return rowcount(result) == 1


async def get_by_id(session: AsyncSession, tier_id: int) -> SubscriptionTier | None:
    return await session.get(SubscriptionTier, tier_id, populate_existing=True)


async def get_by_name(session: AsyncSession, name: str) -> SubscriptionTier | None:
    return await session.scalar(
        select(SubscriptionTier)
        .where(SubscriptionTier.name == name)
        .execution_options(populate_existing=True)
    )


async def list_tiers(session: AsyncSession) -> list[SubscriptionTier]:
    """All tiers, from the smallest to the largest."""
    result = await session.scalars(
        select(SubscriptionTier).order_by(SubscriptionTier.requests_per_minute, SubscriptionTier.id)
    )
    return list(result)
