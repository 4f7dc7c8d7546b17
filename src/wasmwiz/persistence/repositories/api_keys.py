"""Queries on API keys, including the lookup that authenticates every request."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import contains_eager

from wasmwiz.persistence.models import ApiKey, User
from wasmwiz.persistence.repositories._rows import rowcount
from wasmwiz.persistence.types import utcnow

__all__ = [
    "count_live",
    "create",
    "get_by_any_hash",
    "get_by_hash",
    "get_by_id",
    "get_many_for_update",
    "list_for_user",
    "names_by_id",
    "rehash",
    "revoke",
    "revoke_all",
    "touch_last_used",
]


def create(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    name: str,
    prefix: str,
    key_hash: str,
    hash_scheme: int = 2,
    expires_at: datetime | None = None,
    scopes: str = "execute usage:read",
    requests_per_minute: int | None = None,
    requests_per_day: int | None = None,
    max_concurrent_executions: int | None = None,
) -> ApiKey:
    """Add a new key to the session; it is inserted at the next flush.

    `hash_scheme` says how `key_hash` was made (auth.HashScheme; 2 is the current one).
    """
    api_key = ApiKey(
        id=uuid.uuid4(),
        user_id=user_id,
        name=name,
        prefix=prefix,
        key_hash=key_hash,
        hash_scheme=hash_scheme,
        created_at=utcnow(),
        expires_at=expires_at,
        scopes=scopes,
        requests_per_minute=requests_per_minute,
        requests_per_day=requests_per_day,
        max_concurrent_executions=max_concurrent_executions,
    )
    session.add(api_key)
    return api_key


async def get_by_hash(session: AsyncSession, key_hash: str) -> ApiKey | None:
    """The key with this HMAC digest, its `user` and the user's `tier`, in one query.

    Revoked and expired keys are returned too: the caller decides, and can say why.
    """
    statement = (
        select(ApiKey)
        .join(ApiKey.user)
        .join(User.tier)
        .options(contains_eager(ApiKey.user).contains_eager(User.tier))
        .where(ApiKey.key_hash == key_hash)
    )
    return await session.scalar(statement)


async def get_by_any_hash(session: AsyncSession, key_hashes: Collection[str]) -> ApiKey | None:
    """The key stored under any of these digests (one per hash scheme), as `get_by_hash`.

    One indexed `IN` lookup, so a key under an older scheme costs no second query.
    """
    statement = (
        select(ApiKey)
        .join(ApiKey.user)
        .join(User.tier)
        .options(contains_eager(ApiKey.user).contains_eager(User.tier))
        .where(ApiKey.key_hash.in_(list(key_hashes)))
    )
    return await session.scalar(statement)


async def rehash(
    session: AsyncSession, key_id: uuid.UUID, *, old_hash: str, new_hash: str, hash_scheme: int
) -> bool:
    """Store a key under a new digest; False if it no longer has `old_hash` (done already)."""
    statement = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.key_hash == old_hash)
        .values(key_hash=new_hash, hash_scheme=hash_scheme)
    )
    return rowcount(await session.execute(statement)) == 1


async def get_by_id(
    session: AsyncSession, key_id: uuid.UUID, *, user_id: uuid.UUID | None = None
) -> ApiKey | None:
    """The key with this id; with `user_id`, only if that user owns it."""
    statement = select(ApiKey).where(ApiKey.id == key_id)
    if user_id is not None:
        statement = statement.where(ApiKey.user_id == user_id)
    return await session.scalar(statement)


async def get_many_for_update(
    session: AsyncSession, key_ids: Collection[uuid.UUID], *, user_id: uuid.UUID
) -> dict[uuid.UUID, ApiKey]:
    """Those of these keys that `user_id` owns, by id, their rows locked until the
    transaction ends (PostgreSQL; a SQLite writer holds the whole database already)."""
    if not key_ids:
        return {}
    statement = (
        select(ApiKey)
        .where(ApiKey.id.in_(list(key_ids)), ApiKey.user_id == user_id)
        .with_for_update()
    )
    return {key.id: key for key in await session.scalars(statement)}


async def list_for_user(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    limit: int = 50,
    offset: int = 0,
    include_revoked: bool = True,
) -> list[ApiKey]:
    """A user's keys, newest first."""
    statement = select(ApiKey).where(ApiKey.user_id == user_id)
    if not include_revoked:
        statement = statement.where(ApiKey.revoked_at.is_(None))
    statement = statement.order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
    result = await session.scalars(statement.limit(limit).offset(offset))
    return list(result)


async def revoke(
    session: AsyncSession,
    key_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> bool:
    """Revoke a key; False if it does not exist, is not `user_id`'s, or was revoked already."""
    statement = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now or utcnow())
    )
    if user_id is not None:
        statement = statement.where(ApiKey.user_id == user_id)
    return rowcount(await session.execute(statement)) == 1


async def names_by_id(
    session: AsyncSession, key_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str]]:
    """The name and prefix of each of these keys (revoked ones too), by id."""
    if not key_ids:
        return {}
    rows = await session.execute(
        select(ApiKey.id, ApiKey.name, ApiKey.prefix).where(ApiKey.id.in_(list(key_ids)))
    )
    return {key_id: (name, prefix) for key_id, name, prefix in rows}


async def count_live(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> int:
    """A user's keys that still work: neither revoked nor expired."""
    statement = (
        select(func.count())
        .select_from(ApiKey)
        .where(
            ApiKey.user_id == user_id,
            ApiKey.revoked_at.is_(None),
            or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now),
        )
    )
    return await session.scalar(statement) or 0


async def unrevoked(session: AsyncSession, user_id: uuid.UUID) -> list[ApiKey]:
    """A user's keys not revoked yet (expired ones too)."""
    query = select(ApiKey).where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
    return list(await session.scalars(query))


async def revoke_all(session: AsyncSession, user_id: uuid.UUID, *, now: datetime) -> int:
    """Revoke every key of a user not revoked yet; how many were."""
    statement = (
        update(ApiKey)
        .where(ApiKey.user_id == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    return rowcount(await session.execute(statement))


async def touch_last_used(
    session: AsyncSession,
    key_id: uuid.UUID,
    *,
    now: datetime | None = None,
    min_interval: timedelta = timedelta(0),
) -> bool:
    """Record that a key was used; True if the row was written.

    With `min_interval`, a key used more recently than that is left alone, so a busy key
    costs one write per interval instead of one per request.
    """
    now = now or utcnow()
    statement = (
        update(ApiKey)
        .where(
            ApiKey.id == key_id,
            or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= now - min_interval),
        )
        .values(last_used_at=now)
    )
    return rowcount(await session.execute(statement)) == 1
