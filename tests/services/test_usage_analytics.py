"""The usage analytics service on a real database: how a range is read, its defaults from
the clock, the end of the last page, and the refusals every adapter shares."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tests.persistence.factories import make_user, usage_record
from wasmwiz.errors import InvalidParameter
from wasmwiz.persistence.repositories import usage_logs
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.usage_analytics import UsageAnalyticsService, UsageParams

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 3, 1, 0, 30, tzinfo=UTC)


def service() -> UsageAnalyticsService:
    return UsageAnalyticsService(clock=lambda: NOW)


async def test_the_default_range_is_30_utc_days_to_the_end_of_today(
    db_session: AsyncSession,
) -> None:
    user = await make_user(db_session)
    table = await service().account_usage(db_session, user.id, UsageParams())
    assert table.since == datetime(2026, 1, 31, tzinfo=UTC)
    assert table.until == datetime(2026, 3, 2, tzinfo=UTC)
    only_from = await service().account_usage(db_session, user.id, UsageParams(since="2026-02-20"))
    assert (only_from.since, only_from.until) == (datetime(2026, 2, 20, tzinfo=UTC), table.until)


@pytest.mark.parametrize(
    ("given", "since"),
    [
        ("2026-02-01T01:00:00+01:00", datetime(2026, 2, 1, tzinfo=UTC)),
        ("2026-02-01T01:00:00 01:00", datetime(2026, 2, 1, tzinfo=UTC)),  # "+" sent unencoded
        ("2026-01-31T19:00:00-05:00", datetime(2026, 2, 1, tzinfo=UTC)),
        ("2026-02-01T00:00:00Z", datetime(2026, 2, 1, tzinfo=UTC)),
        (" 2026-02-01 ", datetime(2026, 2, 1, tzinfo=UTC)),
    ],
)
async def test_times_are_normalised_to_utc(
    db_session: AsyncSession, given: str, since: datetime
) -> None:
    user = await make_user(db_session)
    table = await service().account_usage(db_session, user.id, UsageParams(since=given))
    assert table.since == since


async def test_a_day_at_the_months_edge_and_the_last_page(db_session: AsyncSession) -> None:
    if db_session.get_bind().dialect.name == "postgresql":
        # Days are UTC days whatever the session's time zone (here 13 hours ahead).
        await db_session.execute(text("SET TIME ZONE 'Pacific/Auckland'"))
    user = await make_user(db_session)
    await usage_logs.insert_many(
        db_session,
        [
            usage_record(user.id, created_at=datetime(2026, 1, 31, 23, 59, 59, 999999, tzinfo=UTC)),
            usage_record(user.id, created_at=datetime(2026, 2, 1, tzinfo=UTC)),
            usage_record(user.id, created_at=datetime(2026, 2, 1, tzinfo=UTC), status="trap"),
        ],
    )
    params = UsageParams(since="2026-01-31", until="2026-02-01", limit=1)
    first = await service().account_usage(db_session, user.id, params)
    assert [(row.group, row.executions) for row in first.rows] == [("2026-01-31", 1)]
    assert first.next_cursor is not None
    second = await service().account_usage(
        db_session,
        user.id,
        UsageParams(since="2026-01-31", until="2026-02-01", limit=1, cursor=first.next_cursor),
    )
    assert [(row.group, row.outcomes) for row in second.rows] == [
        ("2026-02-01", {"success": 1, "trap": 1})
    ]
    assert second.next_cursor is None
    by_hour = await service().account_usage(
        db_session, user.id, UsageParams(since="2026-01-31", until="2026-02-01", group_by="hour")
    )
    assert [(row.group, row.executions) for row in by_hour.rows] == [
        ("2026-01-31T23:00:00Z", 1),
        ("2026-02-01T00:00:00Z", 2),
    ]
    # A cursor that points past the range's last bucket: an empty page, not an error.
    past = await service().account_usage(
        db_session,
        user.id,
        UsageParams(since="2026-01-31", until="2026-01-31", limit=1, cursor=first.next_cursor),
    )
    assert (past.rows, past.next_cursor) == ([], None)


@pytest.mark.parametrize(
    "params",
    [
        UsageParams(since="2026-02-01T00:00:00+00:00", until="2026-02-01T00:00:00+00:00"),
        UsageParams(since="2026-02-30"),
        UsageParams(since="9999-12-31", until="9999-12-31"),
        UsageParams(group_by="Day"),
        UsageParams(user_id="00000000-0000-0000-0000-000000000000"),
        UsageParams(limit=1001),
    ],
)
async def test_refusals_carry_the_usage_query_code(
    db_session: AsyncSession, params: UsageParams
) -> None:
    user = await make_user(db_session)
    with pytest.raises(InvalidParameter) as refused:
        await service().account_usage(db_session, user.id, params)
    assert refused.value.code is ProblemCode.INVALID_USAGE_QUERY
    assert refused.value.status_code == 422


@pytest.mark.parametrize(
    ("group_by", "since", "until", "allowed"),
    [
        ("hour", "2026-01-01", "2026-01-31", True),  # 31 whole days
        ("hour", "2026-01-01T00:00:00Z", "2026-02-01T00:00:01Z", False),
        ("day", "2025-03-01", "2026-02-28", True),  # 365 days
        ("module", "2025-01-01", "2026-01-01", True),  # 366 days
        ("module", "2025-01-01", "2026-01-02", False),
    ],
)
async def test_the_longest_ranges(
    db_session: AsyncSession, group_by: str, since: str, until: str, allowed: bool
) -> None:
    user = await make_user(db_session)
    params = UsageParams(group_by=group_by, since=since, until=until)
    if allowed:
        await service().account_usage(db_session, user.id, params)
        return
    with pytest.raises(InvalidParameter, match="over"):
        await service().account_usage(db_session, user.id, params)
