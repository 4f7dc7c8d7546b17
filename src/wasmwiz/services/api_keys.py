"""API keys: create, list, revoke, and authenticate a request's bearer key."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.auth import GeneratedApiKey, generate_api_key, hash_api_key, is_well_formed_api_key
from wasmwiz.errors import AuthenticationRequired, InvalidRequest, NotFound, PermissionDenied
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import ApiKey, SubscriptionTier
from wasmwiz.persistence.repositories import api_keys as key_repository
from wasmwiz.services.key_cache import KeyCache
from wasmwiz.services.principals import Principal, TierLimits

MAX_KEY_NAME_LENGTH = 100


@dataclass(frozen=True, slots=True)
class CreatedApiKey:
    key: ApiKey
    plaintext: str


def tier_limits(tier: SubscriptionTier) -> TierLimits:
    return TierLimits(
        name=tier.name,
        requests_per_minute=tier.requests_per_minute,
        requests_per_day=tier.requests_per_day,
        max_concurrent_executions=tier.max_concurrent_executions,
        max_fuel=tier.max_fuel,
    )


def key_status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


class ApiKeyService:
    def __init__(
        self,
        secret: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache: KeyCache | None = None,
    ) -> None:
        self._secret = secret
        self._clock = clock
        # Off unless given: one-shot callers (the CLI) gain nothing from one.
        self.cache = cache if cache is not None else KeyCache(0)

    async def authenticate(self, database: Database, authorization: str | None) -> Principal:
        """The caller behind an `Authorization: Bearer <key>` header, or a 401/403 error.

        An active key seen within the cache's lifetime is answered from memory (see
        key_cache for what that means for revocation); otherwise one indexed query.
        Read-only on purpose: the key's last_used_at is written with its usage records,
        in the recorder's batches, so authenticating costs no write (and no SQLite lock).
        """
        if not authorization:
            raise AuthenticationRequired("Send your API key as `Authorization: Bearer <key>`.")
        scheme, _, candidate = authorization.partition(" ")
        candidate = candidate.strip()
        if scheme.lower() != "bearer" or not candidate:
            raise AuthenticationRequired("Use the Bearer scheme: `Authorization: Bearer <key>`.")
        if not is_well_formed_api_key(candidate):
            raise AuthenticationRequired("That is not a WasmWiz API key (they start with ww_).")
        now = self._clock()
        digest = hash_api_key(candidate, self._secret)
        cached = self.cache.get(digest, now)
        if cached is not None:
            return cached
        async with database.session() as session:
            key = await key_repository.get_by_hash(session, digest)
        if key is None:
            raise AuthenticationRequired("Unknown API key.")
        status = key_status(key, now)
        if status != "active":
            raise AuthenticationRequired(f"This API key is {status}.")
        if not key.user.is_active:
            raise PermissionDenied("The account that owns this key is deactivated.")
        principal = Principal(
            user_id=key.user_id,
            email=key.user.email,
            tier=tier_limits(key.user.tier),
            api_key_id=key.id,
        )
        self.cache.put(digest, principal, key_expires_at=key.expires_at)
        return principal

    async def create(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        *,
        name: str,
        expires_at: datetime | None = None,
    ) -> CreatedApiKey:
        name = name.strip()
        if not name or len(name) > MAX_KEY_NAME_LENGTH:
            raise InvalidRequest(
                f"A key name needs 1 to {MAX_KEY_NAME_LENGTH} characters.", code="invalid_name"
            )
        if expires_at is not None and expires_at <= self._clock():
            raise InvalidRequest("The expiry must be in the future.", code="invalid_expiry")
        generated: GeneratedApiKey = generate_api_key(self._secret)
        key = key_repository.create(
            session,
            user_id=user_id,
            name=name,
            prefix=generated.display_prefix,
            key_hash=generated.digest,
            expires_at=expires_at,
        )
        await session.flush()
        return CreatedApiKey(key=key, plaintext=generated.plaintext)

    async def list_for_user(
        self, session: AsyncSession, user_id: uuid.UUID, *, limit: int = 50, offset: int = 0
    ) -> list[ApiKey]:
        return await key_repository.list_for_user(session, user_id, limit=limit, offset=offset)

    async def revoke(
        self, session: AsyncSession, key_id: uuid.UUID, *, user_id: uuid.UUID | None = None
    ) -> None:
        if not await key_repository.revoke(session, key_id, user_id=user_id, now=self._clock()):
            key = await key_repository.get_by_id(session, key_id, user_id=user_id)
            if key is None:
                raise NotFound("No such API key.")
        await session.flush()
        self.cache.forget_key(key_id)
