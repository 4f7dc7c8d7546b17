"""Queries on users; every user is returned with its tier loaded."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from wasmwiz.persistence.models import User
from wasmwiz.persistence.repositories._rows import rowcount
from wasmwiz.persistence.types import utcnow

__all__ = [
    "count_users",
    "create",
    "get_by_email",
    "get_by_id",
    "list_users",
    "lock",
    "normalize_email",
    "set_active",
    "set_admin",
    "set_password_hash",
    "set_tier",
    "soft_delete",
]


def normalize_email(email: str) -> str:
    return email.strip().lower()


# populate_existing: a user already in the session is refreshed, e.g. after set_tier().
_USERS = (
    select(User)
    .options(joinedload(User.tier, innerjoin=True))
    .execution_options(populate_existing=True)
)


def create(
    session: AsyncSession,
    *,
    email: str,
    tier_id: int,
    password_hash: str | None = None,
    is_admin: bool = False,
) -> User:
    """Add a new user to the session; it is inserted at the next flush.

    A taken email surfaces as `sqlalchemy.exc.IntegrityError` at that flush.
    """
    user = User(
        id=uuid.uuid4(),
        email=normalize_email(email),
        password_hash=password_hash,
        tier_id=tier_id,
        is_active=True,
        is_admin=is_admin,
        created_at=utcnow(),
    )
    session.add(user)
    return user


async def get_by_id(session: AsyncSession, user_id: uuid.UUID) -> User | None:
    return await session.scalar(_USERS.where(User.id == user_id))


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    return await session.scalar(_USERS.where(User.email == normalize_email(email)))


async def list_users(session: AsyncSession, *, limit: int = 50, offset: int = 0) -> list[User]:
    """Users not deleted, oldest first."""
    result = await session.scalars(
        _USERS.where(User.deleted_at.is_(None))
        .order_by(User.created_at, User.id)
        .limit(limit)
        .offset(offset)
    )
    return list(result)


async def count_users(session: AsyncSession) -> int:
    """Users not deleted."""
    statement = select(func.count()).select_from(User).where(User.deleted_at.is_(None))
    return await session.scalar(statement) or 0


async def lock(session: AsyncSession, user_id: uuid.UUID) -> bool:
    """Make this transaction the account's only writer until it ends; False if no user.

    A no-op UPDATE as the transaction's first statement: PostgreSQL locks the row, so
    concurrent changes to one account (e.g. counting its keys, then adding one) run one
    after the other; SQLite takes its write lock before reading anything, so the busy
    timeout waits for another writer instead of the upgrade failing (`database is locked`).
    """
    result = await session.execute(
        update(User).where(User.id == user_id).values(tier_id=User.tier_id)
    )
    return rowcount(result) == 1


async def soft_delete(
    session: AsyncSession, user_id: uuid.UUID, *, email: str, now: datetime
) -> bool:
    """Mark a user deleted and anonymise it; the row stays for its usage records."""
    result = await session.execute(
        update(User)
        .where(User.id == user_id, User.deleted_at.is_(None))
        .values(deleted_at=now, email=email, password_hash=None, is_active=False, is_admin=False)
    )
    return rowcount(result) == 1


async def _update(session: AsyncSession, user_id: uuid.UUID, **values: object) -> bool:
    result = await session.execute(update(User).where(User.id == user_id).values(**values))
    return rowcount(result) == 1


async def set_tier(session: AsyncSession, user_id: uuid.UUID, tier_id: int) -> bool:
    """Move a user to another tier; False if there is no such user."""
    return await _update(session, user_id, tier_id=tier_id)


async def set_active(session: AsyncSession, user_id: uuid.UUID, active: bool) -> bool:
    return await _update(session, user_id, is_active=active)


async def set_admin(session: AsyncSession, user_id: uuid.UUID, admin: bool) -> bool:
    return await _update(session, user_id, is_admin=admin)


async def set_password_hash(
    session: AsyncSession, user_id: uuid.UUID, password_hash: str, *, replacing: str | None
) -> bool:
    """Store a new password hash if the stored one is still `replacing`.

    The hash is computed before the transaction opens; the condition makes a change that
    raced with another one fail instead of silently undoing it.
    """
    condition = (
        User.password_hash.is_(None) if replacing is None else User.password_hash == replacing
    )
    result = await session.execute(
        update(User).where(User.id == user_id, condition).values(password_hash=password_hash)
    )
    return rowcount(result) == 1
