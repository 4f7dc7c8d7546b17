"""Invite codes for SIGNUP_MODE=invite: made by an admin (`wasmwiz invites create`), used once."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.auth import hash_session_token
from wasmwiz.persistence.repositories import invites as invite_repository

INVITE_PREFIX = "wwi_"


def invite_code_hash(code: str) -> str:
    """What the database keeps: SHA-256 of the code (128 random bits, like a session token)."""
    return hash_session_token(code.strip())


async def create_invite(
    session: AsyncSession, *, expires_in: timedelta | None = None, now: datetime | None = None
) -> str:
    """A new invite code, returned once; only its hash is stored (at the caller's commit)."""
    code = INVITE_PREFIX + secrets.token_urlsafe(16)
    expires_at = None if expires_in is None else (now or datetime.now(UTC)) + expires_in
    invite_repository.create(session, code_hash=invite_code_hash(code), expires_at=expires_at)
    await session.flush()
    return code
