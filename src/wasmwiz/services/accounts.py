"""User accounts: sign up, sign in, change password, and the admin's user operations."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.auth import PasswordHasher, check_password_rules
from wasmwiz.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from wasmwiz.persistence.models import SubscriptionTier, User
from wasmwiz.persistence.repositories import tiers as tier_repository
from wasmwiz.persistence.repositories import users as user_repository
from wasmwiz.services.key_cache import KeyCache

# Deliberately loose: the only real check of an address is mail reaching it.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MAX_PAGE_SIZE = 100


@dataclass(frozen=True, slots=True)
class UserPage:
    users: list[User]
    page: int
    per_page: int
    total: int

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total


class AccountService:
    def __init__(
        self, hasher: PasswordHasher | None = None, *, key_cache: KeyCache | None = None
    ) -> None:
        self._hasher = hasher or PasswordHasher()
        # Told of deactivations and tier changes, so this process's keys follow at once.
        self._key_cache = key_cache
        # Verified against when the email is unknown, so a wrong email costs as much time
        # as a wrong password and response times do not tell which accounts exist.
        self._decoy_hash: str | None = None

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

    async def sign_up(self, session: AsyncSession, email: str, password: str) -> User:
        """A new free-tier account with a password."""
        problem = check_password_rules(password)
        if problem is not None:
            raise InvalidRequest(problem, code="weak_password")
        email = user_repository.normalize_email(email)
        if await user_repository.get_by_email(session, email) is not None:
            raise Conflict(f"An account with the email {email} exists already.", code="email_taken")
        password_hash = await asyncio.to_thread(self._hasher.hash, password)
        return await self.create_user(session, email, password_hash=password_hash)

    async def check_password(self, session: AsyncSession, email: str, password: str) -> User:
        """The active user with this email and password, or a 401 that does not say which."""
        user = await user_repository.get_by_email(session, email)
        if user is None or user.password_hash is None:
            await asyncio.to_thread(self._hasher.verify, self._decoy(), password)
            raise AuthenticationRequired(
                "The email or the password is wrong.", code="invalid_credentials"
            )
        if not await asyncio.to_thread(self._hasher.verify, user.password_hash, password):
            raise AuthenticationRequired(
                "The email or the password is wrong.", code="invalid_credentials"
            )
        # Only someone who knows the password learns that the account is deactivated.
        if not user.is_active:
            raise PermissionDenied("This account is deactivated.", code="account_deactivated")
        if self._hasher.needs_rehash(user.password_hash):
            user.password_hash = await asyncio.to_thread(self._hasher.hash, password)
            await session.flush()
        return user

    async def change_password(
        self, session: AsyncSession, user_id: uuid.UUID, current: str, new: str
    ) -> None:
        user = await user_repository.get_by_id(session, user_id)
        if user is None:
            raise NotFound("No such user.")
        if user.password_hash is None or not await asyncio.to_thread(
            self._hasher.verify, user.password_hash, current
        ):
            raise InvalidRequest("The current password is wrong.", code="wrong_password")
        problem = check_password_rules(new)
        if problem is not None:
            raise InvalidRequest(problem, code="weak_password")
        user.password_hash = await asyncio.to_thread(self._hasher.hash, new)
        await session.flush()

    async def list_users(self, session: AsyncSession, *, page: int, per_page: int) -> UserPage:
        page = max(page, 1)
        per_page = min(max(per_page, 1), MAX_PAGE_SIZE)
        users = await user_repository.list_users(
            session, limit=per_page, offset=(page - 1) * per_page
        )
        total = await user_repository.count_users(session)
        return UserPage(users=users, page=page, per_page=per_page, total=total)

    async def list_tiers(self, session: AsyncSession) -> list[SubscriptionTier]:
        return await tier_repository.list_tiers(session)

    async def set_tier(self, session: AsyncSession, user_id: uuid.UUID, tier: str) -> None:
        tier_row = await tier_repository.get_by_name(session, tier)
        if tier_row is None:
            raise InvalidRequest(f"There is no tier named {tier!r}.", code="invalid_tier")
        if not await user_repository.set_tier(session, user_id, tier_row.id):
            raise NotFound("No such user.")
        await session.flush()
        if self._key_cache is not None:
            self._key_cache.forget_user(user_id)

    async def set_active(
        self, session: AsyncSession, user_id: uuid.UUID, active: bool, *, acting: uuid.UUID
    ) -> None:
        if user_id == acting and not active:
            raise InvalidRequest("You cannot deactivate your own account.", code="invalid_request")
        if not await user_repository.set_active(session, user_id, active):
            raise NotFound("No such user.")
        await session.flush()
        if self._key_cache is not None:
            self._key_cache.forget_user(user_id)

    async def set_admin(self, session: AsyncSession, email: str, admin: bool) -> User:
        user = await self.get_by_email(session, email)
        await user_repository.set_admin(session, user.id, admin)
        await session.flush()
        return user

    def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = self._hasher.hash("decoy password, never matched")
        return self._decoy_hash
