"""The usage recorder writes one batch per interval under steady load, and loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.persistence.factories import count_queries, make_key, make_user, usage_record
from wasmwiz.persistence import Database, UsageLog
from wasmwiz.services.usage_recorder import UsageRecorder

pytestmark = pytest.mark.anyio


async def _stored(database: Database) -> int:
    async with database.session() as session:
        return await session.scalar(select(func.count()).select_from(UsageLog)) or 0


async def test_a_flush_writes_what_was_pending_when_it_started(
    database: Database, tmp_path: Path
) -> None:
    async with database.session() as session:
        user = await make_user(session)
        key = await make_key(session, user)
        await session.commit()
    recorder = UsageRecorder(database, spool_path=tmp_path / "spool.jsonl", flush_interval=60)
    for _ in range(5):
        recorder.record(usage_record(user.id, api_key_id=key.id))

    flushing = asyncio.create_task(recorder.flush())
    await asyncio.sleep(0)  # the flush has taken its five and is waiting on the database
    for _ in range(3):
        recorder.record(usage_record(user.id, api_key_id=key.id))
    await flushing

    # Records that arrive during a write wait for the next flush: under steady load a
    # flush that chased them would never end, writing a few rows at a time back to back.
    assert await _stored(database) == 5
    assert recorder.pending == 3

    await recorder.close()  # and none is lost
    assert await _stored(database) == 8
    assert recorder.pending == 0


async def test_steady_load_is_written_in_a_few_batches(database: Database, tmp_path: Path) -> None:
    async with database.session() as session:
        user = await make_user(session)
        await session.commit()
    recorder = UsageRecorder(database, spool_path=tmp_path / "spool.jsonl", flush_interval=0.2)
    with count_queries(database.engine) as statements:
        await recorder.start()
        # A record every millisecond for a second: about five intervals' worth.
        for _ in range(1000):
            recorder.record(usage_record(user.id))
            await asyncio.sleep(0.001)
        await recorder.close()
    inserts = [sql for sql in statements if sql.lstrip().upper().startswith("INSERT")]

    assert await _stored(database) == 1000
    # One write per interval (and one at close), not one per handful of records.
    assert len(inserts) <= 12, len(inserts)
