"""Expired web sessions are swept at most once a minute, by an indexed delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence import Database
from wasmwiz.persistence.models import WebSession
from wasmwiz.persistence.repositories import web_sessions as session_repository
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.web_sessions import WebSessionService

pytestmark = pytest.mark.anyio


async def _count(session: AsyncSession) -> int:
    return await session.scalar(select(func.count()).select_from(WebSession)) or 0


async def test_sign_ins_sweep_at_most_once_a_minute(database: Database) -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    clock = [now]
    sessions = WebSessionService(timedelta(hours=1), clock=lambda: clock[0])
    async with database.writer() as session:
        user = await AccountService().create_user(session, "sweep@example.com")
        await session.commit()

    async def expired_one_and_sign_in() -> int:
        async with database.writer() as session:
            session_repository.create(
                session,
                token_hash=f"{clock[0].timestamp():064.0f}",
                user_id=user.id,
                expires_at=clock[0] - timedelta(seconds=1),
            )
            await sessions.start(session, user.id)
            await session.commit()
            return await _count(session)

    assert await expired_one_and_sign_in() == 1  # swept: only the new session is left
    clock[0] += timedelta(seconds=30)
    assert await expired_one_and_sign_in() == 3  # not swept again within the minute
    clock[0] += timedelta(seconds=31)
    # Swept: the two expired ones go; the sessions started (expiring in an hour) stay.
    assert await expired_one_and_sign_in() == 3


async def test_the_sweep_is_indexed(database: Database) -> None:
    async with database.engine.connect() as connection:
        indexes = await connection.run_sync(lambda sync: inspect(sync).get_indexes("web_sessions"))
    assert ["expires_at"] in [index["column_names"] for index in indexes]
