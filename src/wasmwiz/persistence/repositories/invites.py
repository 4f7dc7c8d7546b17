"""Queries on sign-up invite codes: create, check, and redeem once."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from wasmwiz.persistence.models import SignupInvite
from wasmwiz.persistence.repositories._rows import rowcount
from wasmwiz.persistence.types import utcnow

__all__ = ["create", "is_usable", "redeem"]


def create(session: AsyncSession, *, code_hash: str, expires_at: datetime | None) -> SignupInvite:
    invite = SignupInvite(id=code_hash, created_at=utcnow(), expires_at=expires_at)
    session.add(invite)
    return invite


def _usable(code_hash: str, now: datetime) -> ColumnElement[bool]:
    return (
        (SignupInvite.id == code_hash)
        & SignupInvite.used_at.is_(None)
        & or_(SignupInvite.expires_at.is_(None), SignupInvite.expires_at > now)
    )


async def is_usable(session: AsyncSession, code_hash: str, now: datetime) -> bool:
    return await session.scalar(select(SignupInvite.id).where(_usable(code_hash, now))) is not None


async def redeem(session: AsyncSession, code_hash: str, user_id: uuid.UUID, now: datetime) -> bool:
    """Mark the invite used by this user; False if it is unknown, used or expired.

    One conditional UPDATE, so two sign-ups racing for one code cannot both have it.
    """
    result = await session.execute(
        update(SignupInvite).where(_usable(code_hash, now)).values(used_at=now, used_by=user_id)
    )
    return rowcount(result) == 1
