"""User accounts: sign up, sign in, change password, and the admin's user operations."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.auth import check_password_rules
from wasmwiz.config import SignupMode
from wasmwiz.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import SubscriptionTier, User
from wasmwiz.persistence.repositories import invites as invite_repository
from wasmwiz.persistence.repositories import tiers as tier_repository
from wasmwiz.persistence.repositories import users as user_repository
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.invites import invite_code_hash
from wasmwiz.services.key_cache import KeyCache
from wasmwiz.services.password_hashing import PasswordHashing

_WRONG_CREDENTIALS = "The email or the password is wrong."
_SIGNUP_REFUSED = (
    "No account can be made with this email and password. If you have an account, sign in."
)
_INVALID_INVITE = "This invite code is not valid, or has been used or has expired."
# Deliberately loose: the only real check of an address is mail reaching it.
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class PasswordChange:
    """A checked and hashed new password, ready to store in a short write transaction."""

    user_id: uuid.UUID
    old_hash: str
    new_hash: str


class AccountService:
    """Accounts. Password work runs on `hashing` (its own bounded pool) and never inside a
    database transaction: the flows read, close the session, hash, then write briefly."""

    def __init__(
        self,
        hashing: PasswordHashing | None = None,
        *,
        key_cache: KeyCache | None = None,
        signup_mode: SignupMode = SignupMode.OPEN,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        # One thread and no queue when not given (CLI commands hash one password at most).
        self.hashing = hashing or PasswordHashing(threads=1, queue=0)
        # Told of deactivations and tier changes, so this process's keys follow at once.
        self._key_cache = key_cache
        self.signup_mode = signup_mode
        self._clock = clock

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
            raise InvalidRequest(
                f"{email!r} is not an email address.", code=ProblemCode.INVALID_EMAIL
            )
        tier_row = await tier_repository.get_by_name(session, tier)
        if tier_row is None:
            raise InvalidRequest(f"There is no tier named {tier!r}.", code=ProblemCode.INVALID_TIER)
        if await user_repository.get_by_email(session, email) is not None:
            raise Conflict(
                f"A user with the email {email} exists already.", code=ProblemCode.EMAIL_TAKEN
            )
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
                f"A user with the email {email} exists already.", code=ProblemCode.EMAIL_TAKEN
            ) from None
        found = await user_repository.get_by_id(session, user.id)
        assert found is not None
        return found

    async def get_by_email(self, session: AsyncSession, email: str) -> User:
        user = await user_repository.get_by_email(session, email)
        if user is None:
            raise NotFound(f"No user with the email {email}.")
        return user

    async def sign_up(
        self, database: Database, email: str, password: str, *, invite: str = ""
    ) -> User:
        """A new free-tier account with a password, or the existing one if it is its password.

        Whether the email has an account is not told by the answer's wording or timing: a
        refusal for a known email is the same `signup_refused` as for any other reason, and
        either path costs one argon2 operation. Only success for a new email versus refusal
        for a known one (with a wrong password) differs, as it must without mail to confirm
        an address; the sign-up throttle bounds how fast anyone can ask (docs/security.md).

        A place in the hashing pool is taken before the database is touched: when there is
        none the request is refused (429 `try_later`) without costing a connection.
        """
        if self.signup_mode is SignupMode.CLOSED:
            raise PermissionDenied(
                "Sign-up is closed on this server.", code=ProblemCode.SIGNUP_CLOSED
            )
        async with self.hashing.place():
            return await self._sign_up(database, email, password, invite)

    async def _sign_up(self, database: Database, email: str, password: str, invite: str) -> User:
        problem = check_password_rules(password)
        if problem is not None:
            raise InvalidRequest(problem, code=ProblemCode.WEAK_PASSWORD)
        email = user_repository.normalize_email(email)
        if not _EMAIL.fullmatch(email) or len(email) > 320:
            raise InvalidRequest(
                f"{email!r} is not an email address.", code=ProblemCode.INVALID_EMAIL
            )
        invite_hash = invite_code_hash(invite) if invite.strip() else None
        async with database.session() as session:
            # Checked before the email, so without a valid code nothing about accounts leaks.
            if self.signup_mode is SignupMode.INVITE and (
                invite_hash is None
                or not await invite_repository.is_usable(session, invite_hash, self._clock())
            ):
                raise InvalidRequest(_INVALID_INVITE, code=ProblemCode.INVALID_INVITE)
            existing = await user_repository.get_by_email(session, email)
        if existing is not None:
            if (
                existing.is_active
                and existing.password_hash is not None
                and await self.hashing.verify(existing.password_hash, password)
            ):
                return existing
            raise InvalidRequest(_SIGNUP_REFUSED, code=ProblemCode.SIGNUP_REFUSED)
        password_hash = await self.hashing.hash(password)
        async with database.writer() as session:
            try:
                user = await self.create_user(session, email, password_hash=password_hash)
            except Conflict:  # signed up meanwhile, by a parallel request
                raise InvalidRequest(_SIGNUP_REFUSED, code=ProblemCode.SIGNUP_REFUSED) from None
            if self.signup_mode is SignupMode.INVITE:
                assert invite_hash is not None
                if not await invite_repository.redeem(session, invite_hash, user.id, self._clock()):
                    raise InvalidRequest(_INVALID_INVITE, code=ProblemCode.INVALID_INVITE)
            await session.commit()
        return user

    async def sign_in(self, database: Database, email: str, password: str) -> User:
        """The active user with this email and password, or a 401 that does not say which."""
        async with self.hashing.place():
            return await self._sign_in(database, email, password)

    async def _sign_in(self, database: Database, email: str, password: str) -> User:
        async with database.session() as session:
            user = await user_repository.get_by_email(session, email)
        if user is None or user.password_hash is None:
            # The same argon2 work as a real check: timing does not tell who has an account.
            await self.hashing.verify_decoy(password)
            raise AuthenticationRequired(_WRONG_CREDENTIALS, code=ProblemCode.INVALID_CREDENTIALS)
        if not await self.hashing.verify(user.password_hash, password):
            raise AuthenticationRequired(_WRONG_CREDENTIALS, code=ProblemCode.INVALID_CREDENTIALS)
        # Only someone who knows the password learns that the account is deactivated.
        if not user.is_active:
            raise PermissionDenied(
                "This account is deactivated.", code=ProblemCode.ACCOUNT_DEACTIVATED
            )
        if self.hashing.needs_rehash(user.password_hash):
            new_hash = await self.hashing.hash(password)
            async with database.writer() as session:
                await user_repository.set_password_hash(
                    session, user.id, new_hash, replacing=user.password_hash
                )
                await session.commit()
        return user

    async def check_password_change(
        self, database: Database, user_id: uuid.UUID, current: str, new: str
    ) -> PasswordChange:
        """Check the current password and hash the new one, outside any transaction."""
        problem = check_password_rules(new)
        if problem is not None:
            raise InvalidRequest(problem, code=ProblemCode.WEAK_PASSWORD)
        async with self.hashing.place():
            return await self._check_password_change(database, user_id, current, new)

    async def _check_password_change(
        self, database: Database, user_id: uuid.UUID, current: str, new: str
    ) -> PasswordChange:
        async with database.session() as session:
            user = await user_repository.get_by_id(session, user_id)
        if user is None:
            raise NotFound("No such user.")
        if user.password_hash is None or not await self.hashing.verify(user.password_hash, current):
            raise InvalidRequest("The current password is wrong.", code=ProblemCode.WRONG_PASSWORD)
        new_hash = await self.hashing.hash(new)
        return PasswordChange(user_id=user_id, old_hash=user.password_hash, new_hash=new_hash)

    async def apply_password_change(self, session: AsyncSession, change: PasswordChange) -> None:
        """Store a checked change (in the caller's writer session)."""
        if not await user_repository.set_password_hash(
            session, change.user_id, change.new_hash, replacing=change.old_hash
        ):
            raise Conflict(
                "The password was changed meanwhile; sign in again and retry.",
                code=ProblemCode.CONFLICT,
            )

    async def set_password(self, session: AsyncSession, email: str, new: str) -> User:
        """An operator's reset (`wasmwiz users set-password`): no current password asked.

        The hash is computed before the session's first query, so no transaction spans it.
        """
        problem = check_password_rules(new)
        if problem is not None:
            raise InvalidRequest(problem, code=ProblemCode.WEAK_PASSWORD)
        password_hash = await self.hashing.hash(new)
        user = await self.get_by_email(session, email)
        user.password_hash = password_hash
        await session.flush()
        return user

    async def list_tiers(self, session: AsyncSession) -> list[SubscriptionTier]:
        return await tier_repository.list_tiers(session)

    async def set_tier(self, session: AsyncSession, user_id: uuid.UUID, tier: str) -> None:
        tier_row = await tier_repository.get_by_name(session, tier)
        if tier_row is None:
            raise InvalidRequest(f"There is no tier named {tier!r}.", code=ProblemCode.INVALID_TIER)
        if not await user_repository.set_tier(session, user_id, tier_row.id):
            raise NotFound("No such user.")
        await session.flush()
        if self._key_cache is not None:
            self._key_cache.forget_user(user_id)

    async def set_active(
        self, session: AsyncSession, user_id: uuid.UUID, active: bool, *, acting: uuid.UUID
    ) -> None:
        if user_id == acting and not active:
            raise InvalidRequest(
                "You cannot deactivate your own account.", code=ProblemCode.INVALID_REQUEST
            )
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
