"""Queries on subscription tiers."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence.models import SubscriptionTier

__all__ = ["get_by_id", "get_by_name", "list_tiers"]


async def get_by_id(session: AsyncSession, tier_id: int) -> SubscriptionTier | None:
    return await session.get(SubscriptionTier, tier_id)


async def get_by_name(session: AsyncSession, name: str) -> SubscriptionTier | None:
    return await session.scalar(select(SubscriptionTier).where(SubscriptionTier.name == name))


async def list_tiers(session: AsyncSession) -> list[SubscriptionTier]:
    """All tiers, from the smallest to the largest."""
    result = await session.scalars(
        select(SubscriptionTier).order_by(SubscriptionTier.requests_per_minute, SubscriptionTier.id)
    )
    return list(result)
