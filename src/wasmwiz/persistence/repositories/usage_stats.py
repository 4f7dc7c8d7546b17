"""Per-user usage statistics for the dashboard: durations at a rank, counts in a range."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence.models import UsageLog

__all__ = ["count_in_range", "duration_at_rank"]


async def count_in_range(session: AsyncSession, user_id: uuid.UUID, *, since: datetime) -> int:
    statement = (
        select(func.count())
        .select_from(UsageLog)
        .where(UsageLog.user_id == user_id, UsageLog.created_at >= since)
    )
    return await session.scalar(statement) or 0


async def duration_at_rank(
    session: AsyncSession, user_id: uuid.UUID, *, since: datetime, rank: int
) -> float | None:
    """The `rank`-th smallest duration (0-based) of a user's runs since `since`.

    One ORDER BY ... OFFSET query works the same on SQLite and PostgreSQL, where
    percentile functions differ; the caller picks the rank for the percentile it wants.
    """
    statement = (
        select(UsageLog.duration_ms)
        .where(UsageLog.user_id == user_id, UsageLog.created_at >= since)
        .order_by(UsageLog.duration_ms)
        .limit(1)
        .offset(rank)
    )
    value = await session.scalar(statement)
    return float(value) if value is not None else None
