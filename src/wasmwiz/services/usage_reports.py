"""The usage dashboard's figures for one account, shared by the web page and the JSON API.

The limits shown are the account's (its tier's), which every key and the playground share.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence.models import UsageLog
from wasmwiz.persistence.repositories import api_keys as key_repository
from wasmwiz.persistence.repositories import usage_logs, usage_stats
from wasmwiz.services.principals import TierLimits

REPORT_DAYS = 30
RECENT_RUNS = 20


@dataclass(frozen=True, slots=True)
class DayCount:
    day: date
    count: int


@dataclass(frozen=True, slots=True)
class RecentRun:
    execution_id: uuid.UUID
    created_at: datetime
    status: str
    duration_ms: float
    module_sha256: str
    via_api_key: bool
    api_key_id: uuid.UUID | None = None
    api_key_name: str | None = None
    api_key_prefix: str | None = None
    cached: bool = False  # answered from the result cache


@dataclass(frozen=True, slots=True)
class UsageReport:
    days: list[DayCount]
    outcomes: dict[str, int]
    total: int
    median_ms: float | None
    p95_ms: float | None
    today: int
    daily_quota: int
    per_minute: int
    tier: str
    recent: list[RecentRun]
    max_concurrent: int = 0

    @property
    def busiest_day(self) -> int:
        return max((day.count for day in self.days), default=0)


def nearest_rank(percentile: float, count: int) -> int:
    """The 0-based rank of the nearest-rank percentile among `count` sorted values."""
    return max(math.ceil(percentile / 100 * count) - 1, 0)


class UsageReportService:
    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock

    async def report(
        self, session: AsyncSession, user_id: uuid.UUID, tier: TierLimits
    ) -> UsageReport:
        if session.get_bind().dialect.name == "postgresql":
            # One snapshot for every figure, so a batch of usage records committed between
            # two of the queries cannot make the chart disagree with the totals. (SQLite's
            # read transaction is a snapshot already.)
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        now = self._clock()
        daily = await usage_logs.daily_counts(session, days=REPORT_DAYS, user_id=user_id, now=now)
        first = daily[0].day
        since = datetime(first.year, first.month, first.day, tzinfo=UTC)
        today = now.astimezone(UTC).date()
        midnight = datetime(today.year, today.month, today.day, tzinfo=UTC)
        outcomes = await usage_logs.outcome_counts(session, user_id, since=since)
        total = sum(outcomes.values())
        median = p95 = None
        if total:
            median = await usage_stats.duration_at_rank(
                session, user_id, since=since, rank=nearest_rank(50, total)
            )
            p95 = await usage_stats.duration_at_rank(
                session, user_id, since=since, rank=nearest_rank(95, total)
            )
        recent = await usage_logs.recent_for_user(session, user_id, limit=RECENT_RUNS)
        key_names = await key_repository.names_by_id(
            session, {run.api_key_id for run in recent if run.api_key_id is not None}
        )
        return UsageReport(
            days=[DayCount(day.day, day.count) for day in daily],
            outcomes=dict(sorted(outcomes.items(), key=lambda item: (-item[1], item[0]))),
            total=total,
            median_ms=median,
            p95_ms=p95,
            today=await usage_stats.count_in_range(session, user_id, since=midnight),
            daily_quota=tier.requests_per_day,
            per_minute=tier.requests_per_minute,
            max_concurrent=tier.max_concurrent_executions,
            tier=tier.name,
            recent=[_recent_run(run, key_names) for run in recent],
        )


def _recent_run(run: UsageLog, key_names: dict[uuid.UUID, tuple[str, str]]) -> RecentRun:
    name, prefix = key_names.get(run.api_key_id, (None, None)) if run.api_key_id else (None, None)
    return RecentRun(
        execution_id=run.id,
        created_at=run.created_at,
        status=run.status,
        duration_ms=run.duration_ms,
        module_sha256=run.module_sha256,
        via_api_key=run.api_key_id is not None,
        api_key_id=run.api_key_id,
        api_key_name=name,
        api_key_prefix=prefix,
        cached=run.cached,
    )
