"""Usage log queries: idempotent batch inserts, statistics and batched retention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.persistence.factories import count_queries, make_key, make_user, usage_record
from wasmwiz.persistence import Database, UsageLog
from wasmwiz.persistence.repositories import usage_logs
from wasmwiz.persistence.repositories.usage_logs import DailyCount

pytestmark = pytest.mark.anyio

NOW = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)


async def _count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(UsageLog)) or 0


async def test_insert_many_is_idempotent(database: Database) -> None:
    async with database.session() as session:
        user = await make_user(session)
        key = await make_key(session, user)
        records = [usage_record(user.id, api_key_id=key.id) for _ in range(3)]
        await session.commit()

    async with database.session() as session:
        with count_queries(database.engine) as queries:
            assert await usage_logs.insert_many(session, records) == 3
        assert len(queries) == 1
        await session.commit()

    # A retried batch: the known ids are skipped, the new one goes in.
    retry = [*records, usage_record(user.id)]
    async with database.session() as session:
        assert await usage_logs.insert_many(session, retry) == 1
        assert await usage_logs.insert_many(session, retry) == 0
        await session.commit()

    async with database.session() as session:
        assert await _count(session) == 4


async def test_insert_many_skips_duplicates_within_one_batch(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    record = usage_record(user.id)
    assert await usage_logs.insert_many(db_session, [record, record]) == 1
    assert await _count(db_session) == 1


async def test_insert_many_of_nothing(db_session: AsyncSession) -> None:
    assert await usage_logs.insert_many(db_session, []) == 0


async def test_insert_many_stores_every_field(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    key = await make_key(db_session, user)
    record = usage_record(
        user.id,
        api_key_id=key.id,
        created_at=NOW,
        duration_ms=12.25,
        status="trap",
        exit_code=None,
        error="unreachable executed",
        memory_peak_bytes=5 * 2**32,
        fuel_consumed=2**40,
    )
    await usage_logs.insert_many(db_session, [record])
    (stored,) = await usage_logs.recent_for_user(db_session, user.id)
    assert stored.id == record.id
    assert stored.api_key_id == key.id
    assert stored.created_at == NOW
    assert (stored.duration_ms, stored.status, stored.exit_code) == (12.25, "trap", None)
    assert stored.error == "unreachable executed"
    assert (stored.memory_peak_bytes, stored.fuel_consumed) == (5 * 2**32, 2**40)
    assert (stored.module_size, stored.module_sha256) == (120, "ab" * 32)
    assert (stored.input_size, stored.output_size, stored.stderr_size) == (3, 5, 0)


async def test_a_run_without_a_fuel_budget_is_stored_as_not_metered(
    db_session: AsyncSession,
) -> None:
    user = await make_user(db_session)
    await usage_logs.insert_many(db_session, [usage_record(user.id, fuel_consumed=None)])
    (stored,) = await usage_logs.recent_for_user(db_session, user.id)
    assert stored.fuel_consumed is None  # NULL (migration 0012), not 0


async def test_count_for_user_in_a_time_range(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    other = await make_user(db_session)
    minutes = [-90, -30, -1, 0, 5]
    await usage_logs.insert_many(
        db_session,
        [usage_record(user.id, created_at=NOW + timedelta(minutes=m)) for m in minutes]
        + [usage_record(other.id, created_at=NOW)],
    )
    hour_ago = NOW - timedelta(hours=1)
    assert await usage_logs.count_for_user(db_session, user.id, since=hour_ago) == 4
    assert await usage_logs.count_for_user(db_session, user.id, since=hour_ago, until=NOW) == 2
    assert await usage_logs.count_for_user(db_session, other.id, since=hour_ago) == 1


async def test_daily_counts_fill_empty_days(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    other = await make_user(db_session)
    today_start = datetime(2030, 3, 10, tzinfo=UTC)
    times = [
        today_start - timedelta(days=5),  # outside a 3-day window
        today_start - timedelta(days=2),  # first day of the window
        today_start - timedelta(microseconds=1),  # the last instant of yesterday (UTC)
        today_start,
        NOW,
    ]
    await usage_logs.insert_many(
        db_session,
        [usage_record(user.id, created_at=t) for t in times]
        + [usage_record(other.id, created_at=NOW)],
    )
    mine = await usage_logs.daily_counts(db_session, user_id=user.id, days=3, now=NOW)
    assert mine == [
        DailyCount(date(2030, 3, 8), 1),
        DailyCount(date(2030, 3, 9), 1),
        DailyCount(date(2030, 3, 10), 2),
    ]
    everyone = await usage_logs.daily_counts(db_session, days=1, now=NOW)
    assert everyone == [DailyCount(date(2030, 3, 10), 3)]
    with pytest.raises(ValueError, match="days"):
        await usage_logs.daily_counts(db_session, days=0)


async def test_days_are_utc_days_whatever_the_time_zone_of_now(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    await usage_logs.insert_many(db_session, [usage_record(user.id, created_at=NOW)])
    tokyo_tomorrow = NOW.astimezone(UTC) + timedelta(hours=13)  # 2030-03-11 01:00 UTC
    counts = await usage_logs.daily_counts(db_session, user_id=user.id, days=2, now=tokyo_tomorrow)
    assert counts == [DailyCount(date(2030, 3, 10), 1), DailyCount(date(2030, 3, 11), 0)]


async def test_outcome_counts(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    statuses = ["success", "success", "trap", "timeout", "success"]
    await usage_logs.insert_many(
        db_session,
        [usage_record(user.id, status=s, created_at=NOW) for s in statuses]
        + [usage_record(user.id, status="trap", created_at=NOW - timedelta(days=2))],
    )
    since = NOW - timedelta(days=1)
    assert await usage_logs.outcome_counts(db_session, user.id, since=since) == {
        "success": 3,
        "trap": 1,
        "timeout": 1,
    }
    assert await usage_logs.outcome_counts(db_session, user.id, since=since, until=since) == {}


async def test_recent_for_user_newest_first(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    other = await make_user(db_session)
    records = [usage_record(user.id, created_at=NOW + timedelta(seconds=i)) for i in range(5)]
    await usage_logs.insert_many(db_session, [*records, usage_record(other.id)])
    recent = await usage_logs.recent_for_user(db_session, user.id, limit=3)
    assert [log.id for log in recent] == [r.id for r in reversed(records)][:3]


async def test_delete_older_than_in_batches(database: Database) -> None:
    async with database.session() as session:
        user = await make_user(session)
        old = [
            usage_record(user.id, created_at=NOW - timedelta(days=40, minutes=i)) for i in range(7)
        ]
        new = [usage_record(user.id, created_at=NOW - timedelta(days=1)) for _ in range(2)]
        await usage_logs.insert_many(session, old + new)
        await session.commit()

    cutoff = NOW - timedelta(days=30)
    async with database.session() as session:
        with count_queries(database.engine) as queries:
            assert await usage_logs.delete_older_than(session, cutoff, batch_size=3) == 7
        deletes = [q for q in queries if q.lstrip().upper().startswith("DELETE")]
        assert len(deletes) == 3  # 3 + 3 + 1
        await session.commit()

    async with database.session() as session:
        assert await _count(session) == 2
        assert await usage_logs.delete_older_than(session, cutoff) == 0
        with pytest.raises(ValueError, match="batch_size"):
            await usage_logs.delete_older_than(session, cutoff, batch_size=0)


async def test_delete_batch_older_than_with_a_commit_per_batch(database: Database) -> None:
    async with database.session() as session:
        user = await make_user(session)
        old = [usage_record(user.id, created_at=NOW - timedelta(days=40)) for _ in range(5)]
        await usage_logs.insert_many(session, old)
        await session.commit()

    deleted = []
    while True:
        async with database.session() as session:
            batch = await usage_logs.delete_batch_older_than(session, NOW, limit=2)
            await session.commit()
        deleted.append(batch)
        if batch == 0:
            break
    assert deleted == [2, 2, 1, 0]
