"""Queries on the usage log: idempotent batch writes, per-user statistics and retention."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence.models import UsageLog
from wasmwiz.persistence.repositories._rows import rowcount
from wasmwiz.persistence.repositories.usage_analytics import utc_date
from wasmwiz.persistence.types import utcnow

__all__ = [
    "DailyCount",
    "UsageRecord",
    "count_for_user",
    "daily_counts",
    "delete_batch_older_than",
    "delete_older_than",
    "insert_many",
    "outcome_counts",
    "recent_for_user",
]


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class UsageRecord:
    """One execution, as the usage recorder hands it over; `id` is the execution id."""

    id: uuid.UUID
    user_id: uuid.UUID
    api_key_id: uuid.UUID | None
    created_at: datetime
    duration_ms: float
    status: str
    exit_code: int | None
    error: str | None
    module_size: int
    module_sha256: str
    input_size: int
    output_size: int
    stderr_size: int
    memory_peak_bytes: int
    fuel_consumed: int | None  # None: not metered (the run had no fuel budget)
    batch_id: uuid.UUID | None = None  # the batch the run was a case of
    cached: bool = False  # answered from the result cache: nothing ran


_RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(UsageRecord))


@dataclasses.dataclass(frozen=True, slots=True)
class DailyCount:
    day: date
    count: int


async def insert_many(session: AsyncSession, records: Sequence[UsageRecord]) -> int:
    """Insert records, skipping any whose id is already stored; returns how many were new.

    One INSERT ... ON CONFLICT DO NOTHING, sent as multi-row VALUES batches, so a batch
    retried after a failure cannot count an execution twice.
    """
    if not records:
        return 0
    dialect = session.get_bind().dialect.name
    statement: postgresql.Insert | sqlite.Insert
    if dialect == "postgresql":
        statement = postgresql.insert(UsageLog).on_conflict_do_nothing(index_elements=["id"])
    elif dialect == "sqlite":
        statement = sqlite.insert(UsageLog).on_conflict_do_nothing(index_elements=["id"])
    else:
        raise NotImplementedError(f"no idempotent insert for the {dialect!r} dialect")
    # Shallow on purpose: asdict() deep-copies every value, a cost the event loop pays.
    rows: list[dict[str, Any]] = [
        {name: getattr(record, name) for name in _RECORD_FIELDS} for record in records
    ]
    inserted = await session.scalars(statement.returning(UsageLog.id), rows)
    return len(inserted.all())


async def count_for_user(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    since: datetime,
    until: datetime | None = None,
) -> int:
    """Executions by a user from `since` (inclusive) to `until` (exclusive)."""
    statement = (
        select(func.count())
        .select_from(UsageLog)
        .where(UsageLog.user_id == user_id, UsageLog.created_at >= since)
    )
    if until is not None:
        statement = statement.where(UsageLog.created_at < until)
    return await session.scalar(statement) or 0


async def daily_counts(
    session: AsyncSession,
    *,
    days: int,
    user_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> list[DailyCount]:
    """Executions per UTC day over the last `days` days (today included), oldest first.

    Days without executions are included with a count of 0. Without `user_id`, all users.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    today = (now or utcnow()).astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    since = datetime(first.year, first.month, first.day, tzinfo=UTC)
    day = utc_date(UsageLog.created_at)
    statement = select(day, func.count()).where(UsageLog.created_at >= since).group_by(day)
    if user_id is not None:
        statement = statement.where(UsageLog.user_id == user_id)
    counts = dict((await session.execute(statement)).all())
    return [
        DailyCount(first + timedelta(days=offset), counts.get(first + timedelta(days=offset), 0))
        for offset in range(days)
    ]


async def outcome_counts(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    since: datetime,
    until: datetime | None = None,
) -> dict[str, int]:
    """Executions by a user per status (success, trap, timeout, ...) in a time range."""
    statement = (
        select(UsageLog.status, func.count())
        .where(UsageLog.user_id == user_id, UsageLog.created_at >= since)
        .group_by(UsageLog.status)
    )
    if until is not None:
        statement = statement.where(UsageLog.created_at < until)
    return dict((await session.execute(statement)).all())


async def recent_for_user(
    session: AsyncSession, user_id: uuid.UUID, *, limit: int = 20
) -> list[UsageLog]:
    """A user's latest executions, newest first."""
    statement = (
        select(UsageLog)
        .where(UsageLog.user_id == user_id)
        .order_by(UsageLog.created_at.desc(), UsageLog.id.desc())
        .limit(limit)
    )
    return list(await session.scalars(statement))


async def delete_batch_older_than(session: AsyncSession, cutoff: datetime, *, limit: int) -> int:
    """Delete at most `limit` records created before `cutoff`; returns how many went.

    A retention job that wants short transactions commits between calls, until it gets 0.
    """
    doomed = select(UsageLog.id).where(UsageLog.created_at < cutoff).limit(limit)
    statement = (
        delete(UsageLog)
        .where(UsageLog.id.in_(doomed.scalar_subquery()))
        .execution_options(synchronize_session=False)
    )
    return rowcount(await session.execute(statement))


async def delete_older_than(
    session: AsyncSession, cutoff: datetime, *, batch_size: int = 5000
) -> int:
    """Delete every record created before `cutoff`, `batch_size` rows per statement.

    All batches run in the caller's transaction; returns the total deleted.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    total = 0
    while True:
        deleted = await delete_batch_older_than(session, cutoff, limit=batch_size)
        total += deleted
        if deleted < batch_size:
            return total
