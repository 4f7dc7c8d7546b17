"""Tier and account administration, shared by the admin API, the admin page and the CLI.

Every method runs in a `Database.writer()` session and begins with a write, so concurrent
admin edits queue on SQLite instead of failing, and each leaves the caller to commit.
Running servers see a change without a restart: this process's key cache forgets what
it held at once; other replicas within API_KEY_CACHE_SECONDS (no cached entry outlives
it), and the web pages read the tier with every request.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Float, Numeric
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.errors import Conflict, InvalidRequest, NotFound
from wasmwiz.persistence.models import SubscriptionTier, User
from wasmwiz.persistence.repositories import api_keys as key_repository
from wasmwiz.persistence.repositories import tiers as tier_repository
from wasmwiz.persistence.repositories import users as user_repository
from wasmwiz.persistence.repositories import wasm_modules as module_repository
from wasmwiz.persistence.repositories import web_sessions as session_repository
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.key_cache import KeyCache

MAX_PER_PAGE = 100
TIER_NAME_MAX = 32
_NOT_LIMITS = {"id", "name", "created_at", "updated_at"}
# What a null limit means unless its column says otherwise (info["null_means"]).
NO_LIMIT = "no limit"


@dataclass(frozen=True, slots=True)
class LimitField:
    """One limit column of a tier."""

    kind: type[int] | type[float]
    nullable: bool
    """May be null (see `null_means`)."""
    required: bool
    """A new tier must give it (no database default)."""
    null_means: str = NO_LIMIT
    """What null stands for: no limit, or the server's setting (the column's info)."""
    minimum: int = 1
    """The least value: 1, or 0 where 0 is a limit too (none may be stored)."""

    @property
    def whole(self) -> bool:
        return self.kind is int


def tier_limit_fields() -> dict[str, LimitField]:
    """Each limit column of a tier, read from the model, so a limit a later migration adds
    can be set here too."""
    fields: dict[str, LimitField] = {}
    for column in SubscriptionTier.__table__.columns:
        if column.name in _NOT_LIMITS:
            continue
        kind: type[int] | type[float] = float if isinstance(column.type, Float | Numeric) else int
        nullable = bool(column.nullable)
        required = not nullable and column.server_default is None
        null_means = str(column.info.get("null_means", NO_LIMIT))
        minimum = int(column.info.get("minimum", 1))
        fields[column.name] = LimitField(kind, nullable, required, null_means, minimum)
    return fields


@dataclass(frozen=True, slots=True)
class AdminUserPage:
    users: list[User]
    page: int
    per_page: int
    total: int

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total


def deleted_email(user_id: uuid.UUID) -> str:
    """What a deleted account's email becomes: unique, and no one's address."""
    return f"deleted-{user_id.hex}@deleted.invalid"


class AdminService:
    def __init__(
        self,
        *,
        key_cache: KeyCache | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._key_cache = key_cache
        self._clock = clock

    async def list_tiers(self, session: AsyncSession) -> list[SubscriptionTier]:
        return await tier_repository.list_tiers(session)

    async def create_tier(
        self, session: AsyncSession, name: str, limits: Mapping[str, object]
    ) -> SubscriptionTier:
        name = _tier_name(name)
        values = _limit_values(limits, complete=True)
        tier = tier_repository.create(session, name=name, **values)
        try:
            await session.flush()
        except IntegrityError:
            raise Conflict(
                f"A tier named {name!r} exists already.", code=ProblemCode.TIER_EXISTS
            ) from None
        return tier

    async def update_tier(
        self, session: AsyncSession, name: str, changes: Mapping[str, object]
    ) -> SubscriptionTier:
        values = _limit_values(changes, complete=False)
        if not values:
            raise InvalidRequest(
                "Give at least one limit to change.", code=ProblemCode.INVALID_TIER
            )
        if not await tier_repository.update(session, name, **values):
            raise NotFound(f"There is no tier named {name!r}.")
        tier = await tier_repository.get_by_name(session, name)
        assert tier is not None
        if self._key_cache is not None:
            self._key_cache.clear()
        return tier

    async def list_users(self, session: AsyncSession, *, page: int, per_page: int) -> AdminUserPage:
        page = max(page, 1)
        per_page = min(max(per_page, 1), MAX_PER_PAGE)
        users = await user_repository.list_users(
            session, limit=per_page, offset=(page - 1) * per_page
        )
        total = await user_repository.count_users(session)
        return AdminUserPage(users=users, page=page, per_page=per_page, total=total)

    async def user_id(self, session: AsyncSession, email: str) -> uuid.UUID:
        user = await user_repository.get_by_email(session, email)
        if user is None or user.deleted_at is not None:
            raise NotFound(f"No user with the email {email}.")
        return user.id

    async def get_user(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        user = await user_repository.get_by_id(session, user_id)
        if user is None or user.deleted_at is not None:
            raise NotFound("No such user.")
        return user

    async def set_tier(self, session: AsyncSession, user_id: uuid.UUID, tier: str) -> User:
        user = await self._locked_user(session, user_id)
        tier_row = await tier_repository.get_by_name(session, tier)
        if tier_row is None:
            raise InvalidRequest(f"There is no tier named {tier!r}.", code=ProblemCode.INVALID_TIER)
        await user_repository.set_tier(session, user.id, tier_row.id)
        return await self._changed(session, user.id)

    async def set_active(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        active: bool,
        *,
        acting: uuid.UUID | None = None,
    ) -> User:
        """Deactivate (refuse its keys, end its sessions) or reactivate an account."""
        if user_id == acting and not active:
            raise InvalidRequest(
                "You cannot deactivate your own account.", code=ProblemCode.INVALID_REQUEST
            )
        user = await self._locked_user(session, user_id)
        await user_repository.set_active(session, user.id, active)
        if not active:
            await session_repository.delete_for_user(session, user.id)
        return await self._changed(session, user.id)

    async def delete_user(
        self, session: AsyncSession, user_id: uuid.UUID, *, acting: uuid.UUID | None = None
    ) -> User:
        """Delete an account: its keys revoked, its sessions ended, its stored modules
        deleted (and their bytes, unless another account stored them), the row anonymised.

        The row itself stays (deleted_at set, email replaced, no password, inactive) so
        its usage records keep their user for billing; `wasmwiz usage prune` deletes them
        when they pass USAGE_RETENTION_DAYS, as it does everyone's.
        """
        if user_id == acting:
            raise InvalidRequest(
                "You cannot delete your own account.", code=ProblemCode.INVALID_REQUEST
            )
        user = await self._locked_user(session, user_id)
        now = self._clock()
        await key_repository.revoke_all(session, user.id, now=now)
        await session_repository.delete_for_user(session, user.id)
        await module_repository.delete_all_for_user(session, user.id)
        await user_repository.soft_delete(session, user.id, email=deleted_email(user.id), now=now)
        return await self._changed(session, user.id)

    async def _locked_user(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        if not await user_repository.lock(session, user_id):
            raise NotFound("No such user.")
        user = await user_repository.get_by_id(session, user_id)
        if user is None or user.deleted_at is not None:
            raise NotFound("No such user.")
        return user

    async def _changed(self, session: AsyncSession, user_id: uuid.UUID) -> User:
        await session.flush()
        if self._key_cache is not None:
            self._key_cache.forget_user(user_id)
        user = await user_repository.get_by_id(session, user_id)
        assert user is not None
        return user


def _tier_name(name: str) -> str:
    name = name.strip().lower()
    if (
        not name
        or len(name) > TIER_NAME_MAX
        or not name.replace("-", "").replace("_", "").isalnum()
    ):
        raise InvalidRequest(
            f"A tier name is 1 to {TIER_NAME_MAX} letters, digits, '-' or '_'.",
            code=ProblemCode.INVALID_TIER,
        )
    return name


def _limit_values(given: Mapping[str, object], *, complete: bool) -> dict[str, object]:
    """Checked limit values; with `complete`, every non-nullable limit must be given."""
    fields = tier_limit_fields()
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise InvalidRequest(
            f"Unknown tier limit {unknown[0]!r}; the limits are: {', '.join(fields)}.",
            code=ProblemCode.INVALID_TIER,
        )
    values: dict[str, object] = {}
    for field, spec in fields.items():
        kind = spec.kind
        if field not in given:
            if complete and spec.required:
                raise InvalidRequest(f"Give the tier's {field}.", code=ProblemCode.INVALID_TIER)
            continue
        value = given[field]
        if value is None:
            if not spec.nullable:
                raise InvalidRequest(f"{field} cannot be empty.", code=ProblemCode.INVALID_TIER)
            values[field] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{field} must be a number.", code=ProblemCode.INVALID_TIER)
        if kind is int and not float(value).is_integer():
            raise InvalidRequest(f"{field} must be a whole number.", code=ProblemCode.INVALID_TIER)
        if value < spec.minimum if kind is int else value <= 0:
            raise InvalidRequest(
                f"{field} must be at least {spec.minimum}.", code=ProblemCode.INVALID_TIER
            )
        if kind is int and value > 2**62:
            raise InvalidRequest(f"{field} is too large.", code=ProblemCode.INVALID_TIER)
        values[field] = kind(value)
    return values
