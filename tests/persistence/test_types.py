"""Timestamps are timezone-aware UTC on the way in and on the way out, on every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.exc import StatementError

from tests.persistence.factories import make_key, make_user
from wasmwiz.persistence import Database
from wasmwiz.persistence.migrate import upgrade_async
from wasmwiz.persistence.repositories import api_keys, tiers

pytestmark = pytest.mark.anyio

PARIS_SUMMER = timezone(timedelta(hours=2))


async def test_aware_datetimes_round_trip_as_utc(database: Database) -> None:
    expires = datetime(2030, 6, 1, 14, 30, 15, 123456, tzinfo=PARIS_SUMMER)
    async with database.session() as session:
        user = await make_user(session)
        key = await make_key(session, user, expires_at=expires)
        await session.commit()

    async with database.session() as session:
        loaded = await api_keys.get_by_id(session, key.id)
    assert loaded is not None
    assert loaded.expires_at == expires
    assert loaded.expires_at is not None
    assert loaded.expires_at.tzinfo is UTC
    assert loaded.expires_at.hour == 12
    assert loaded.created_at.tzinfo is UTC


async def test_server_default_timestamps_read_back_aware(database_url: str) -> None:
    # The seeded tiers got their timestamps from the database's now(), not from Python,
    # when this test migrated its own database (the `database` fixture's SQLite file is
    # a copy of one migrated when the test process started, which may be minutes ago).
    await upgrade_async(database_url)
    database = Database(database_url)
    try:
        async with database.session() as session:
            free = await tiers.get_by_name(session, "free")
    finally:
        await database.dispose()
    assert free is not None
    assert free.created_at.tzinfo is UTC
    assert abs(datetime.now(UTC) - free.created_at) < timedelta(minutes=5)


async def test_the_stored_instant_is_utc(database: Database) -> None:
    async with database.session() as session:
        user = await make_user(session)
        await make_key(session, user, expires_at=datetime(2030, 1, 1, 1, 0, tzinfo=PARIS_SUMMER))
        as_text = (
            "CAST(expires_at AS TEXT)"
            if database.is_sqlite
            else "CAST(timezone('UTC', expires_at) AS TEXT)"
        )
        stored = await session.scalar(text(f"SELECT {as_text} FROM api_keys"))
    # SQLite keeps fixed-width UTC text, so text order is time order.
    expected = "2029-12-31 23:00:00.000000" if database.is_sqlite else "2029-12-31 23:00:00"
    assert stored == expected


async def test_naive_datetimes_are_refused(database: Database) -> None:
    async with database.session() as session:
        user = await make_user(session)
        with pytest.raises(StatementError, match="timezone-aware"):
            await make_key(session, user, expires_at=datetime(2030, 1, 1))
