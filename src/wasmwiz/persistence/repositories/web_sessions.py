"""Queries on web sessions: create, look up by token hash (with the user), delete."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from wasmwiz.persistence.models import User, WebSession
from wasmwiz.persistence.repositories._rows import rowcount
from wasmwiz.persistence.types import utcnow

__all__ = ["create", "delete_by_id", "delete_expired", "delete_for_user", "get_with_user"]


def create(
    session: AsyncSession, *, token_hash: str, user_id: uuid.UUID, expires_at: datetime
) -> WebSession:
    web_session = WebSession(
        id=token_hash, user_id=user_id, created_at=utcnow(), expires_at=expires_at
    )
    session.add(web_session)
    return web_session


async def get_with_user(session: AsyncSession, token_hash: str) -> WebSession | None:
    """The session with this token hash, its user and the user's tier, in one query."""
    statement = (
        select(WebSession)
        .join(WebSession.user)
        .join(User.tier)
        .options(contains_eager(WebSession.user).contains_eager(User.tier))
        .where(WebSession.id == token_hash)
        .execution_options(populate_existing=True)
    )
    return await session.scalar(statement)


async def delete_by_id(session: AsyncSession, token_hash: str) -> bool:
    result = await session.execute(delete(WebSession).where(WebSession.id == token_hash))
    return rowcount(result) == 1


async def delete_for_user(
    session: AsyncSession, user_id: uuid.UUID, *, keep: str | None = None
) -> int:
    """Sign a user out everywhere, except the session `keep` when given."""
    statement = delete(WebSession).where(WebSession.user_id == user_id)
    if keep is not None:
        statement = statement.where(WebSession.id != keep)
    return rowcount(await session.execute(statement))


async def delete_expired(session: AsyncSession, now: datetime) -> int:
    return rowcount(await session.execute(delete(WebSession).where(WebSession.expires_at <= now)))
