"""User accounts: create users, look them up, change their tier."""

from __future__ import annotations

import re

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.errors import Conflict, InvalidRequest, NotFound
from wasmwiz.persistence.models import User
from wasmwiz.persistence.repositories import tiers as tier_repository
from wasmwiz.persistence.repositories import users as user_repository

# Deliberately loose: the only real check of an address is mail reaching it.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class AccountService:
    async def create_user(
        self,
        session: AsyncSession,
        email: str,
        *,
        tier: str = "free",
        password_hash: str | None = None,
        is_admin: bool = False,
    ) -> User:
        email = user_repository.normalize_email(email)
        if not _EMAIL.fullmatch(email) or len(email) > 320:
            raise InvalidRequest(f"{email!r} is not an email address.", code="invalid_email")
        tier_row = await tier_repository.get_by_name(session, tier)
        if tier_row is None:
            raise InvalidRequest(f"There is no tier named {tier!r}.", code="invalid_tier")
        if await user_repository.get_by_email(session, email) is not None:
            raise Conflict(f"A user with the email {email} exists already.", code="email_taken")
        user = user_repository.create(
            session,
            email=email,
            tier_id=tier_row.id,
            password_hash=password_hash,
            is_admin=is_admin,
        )
        try:
            await session.flush()
        except IntegrityError:
            raise Conflict(
                f"A user with the email {email} exists already.", code="email_taken"
            ) from None
        found = await user_repository.get_by_id(session, user.id)
        assert found is not None
        return found

    async def get_by_email(self, session: AsyncSession, email: str) -> User:
        user = await user_repository.get_by_email(session, email)
        if user is None:
            raise NotFound(f"No user with the email {email}.")
        return user
