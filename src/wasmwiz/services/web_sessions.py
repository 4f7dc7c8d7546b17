"""Signed-in browsers: start a session, resolve a cookie to its user, sign out."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.auth import generate_session_token, hash_session_token
from wasmwiz.persistence.models import User
from wasmwiz.persistence.repositories import web_sessions as session_repository

_SWEEP_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class StartedSession:
    token: str
    expires_at: datetime


class WebSessionService:
    def __init__(
        self,
        lifetime: timedelta,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.lifetime = lifetime
        self._clock = clock
        self._next_sweep: datetime | None = None

    async def start(self, session: AsyncSession, user_id: uuid.UUID) -> StartedSession:
        """A new session for the user; the token goes into the cookie and nowhere else."""
        now = self._clock()
        # Expired sessions are swept here, at most once a minute per process (an indexed
        # delete), so the table holds few more than live ones without a sign-in paying
        # for a sweep every time.
        if self._next_sweep is None or now >= self._next_sweep:
            self._next_sweep = now + _SWEEP_INTERVAL
            await session_repository.delete_expired(session, now)
        token = generate_session_token()
        expires_at = now + self.lifetime
        session_repository.create(
            session, token_hash=hash_session_token(token), user_id=user_id, expires_at=expires_at
        )
        await session.flush()
        return StartedSession(token=token, expires_at=expires_at)

    async def resolve(self, session: AsyncSession, token: str | None) -> User | None:
        """The active user signed in with this token, or None."""
        if not token:
            return None
        found = await session_repository.get_with_user(session, hash_session_token(token))
        if found is None or found.expires_at <= self._clock() or not found.user.is_active:
            return None
        return found.user

    async def end(self, session: AsyncSession, token: str | None) -> None:
        if token:
            await session_repository.delete_by_id(session, hash_session_token(token))
            await session.flush()

    async def end_others(self, session: AsyncSession, user_id: uuid.UUID, keep: str) -> int:
        """Sign the user out of every other browser (after a password change)."""
        ended = await session_repository.delete_for_user(
            session, user_id, keep=hash_session_token(keep)
        )
        await session.flush()
        return ended

    async def end_all(self, session: AsyncSession, user_id: uuid.UUID) -> int:
        ended = await session_repository.delete_for_user(session, user_id)
        await session.flush()
        return ended
