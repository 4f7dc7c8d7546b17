"""API keys: create, list, revoke, change in bulk, and authenticate a request's bearer key."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Literal, Protocol

from opentelemetry import trace
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.auth import (
    API_KEY_PREFIX,
    GeneratedApiKey,
    HashScheme,
    candidate_hashes,
    generate_api_key,
    is_well_formed_api_key,
)
from wasmwiz.errors import (
    AuthenticationRequired,
    Conflict,
    InvalidParameter,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from wasmwiz.observability.tracing import use_case_span
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import ApiKey, SubscriptionTier
from wasmwiz.persistence.repositories import api_keys as key_repository
from wasmwiz.persistence.repositories import users as user_repository
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.key_bulk import (
    KEEP,
    BulkAction,
    BulkItem,
    Keep,
    KeyChanges,
    Refusal,
    check_count,
    judge,
    refuse_unless_all_ok,
)
from wasmwiz.services.key_cache import KeyCache
from wasmwiz.services.principals import (
    DEFAULT_KEY_SCOPES,
    KeyLimits,
    Principal,
    Scope,
    TierLimits,
    format_scopes,
    stored_scopes,
)
from wasmwiz.services.rate_limits import KeyCreationLimit

MAX_KEY_NAME_LENGTH = 100

logger = logging.getLogger(__name__)


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
        compile_seconds_per_minute=tier.compile_seconds_per_minute,
        max_api_keys=tier.max_api_keys,
        max_stored_modules=tier.max_stored_modules,
        max_stored_module_bytes=tier.max_stored_module_bytes,
        job_timeout_seconds=tier.job_timeout_seconds,
        max_queued_jobs=tier.max_queued_jobs,
        job_result_seconds=tier.job_result_seconds,
        api_requests_per_minute=tier.api_requests_per_minute,
        api_requests_per_day=tier.api_requests_per_day,
    )


def key_limits(key: ApiKey) -> KeyLimits:
    return KeyLimits(
        requests_per_minute=key.requests_per_minute,
        requests_per_day=key.requests_per_day,
        max_concurrent_executions=key.max_concurrent_executions,
    )


def key_status(key: ApiKey, now: datetime) -> str:
    if key.revoked_at is not None:
        return "revoked"
    if key.expires_at is not None and key.expires_at <= now:
        return "expired"
    return "active"


class KeyEvents(Protocol):
    """What key changes tell the webhooks (services/webhooks/): in the change's session,
    delivered once it commits."""

    async def key_created(self, session: AsyncSession, key: ApiKey) -> None: ...

    async def keys_revoked(self, session: AsyncSession, keys: Sequence[ApiKey]) -> None: ...


class ApiKeyService:
    def __init__(
        self,
        secret: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache: KeyCache | None = None,
        creation_limit: KeyCreationLimit | None = None,
        hash_scheme: HashScheme = HashScheme.DERIVED,
        events: KeyEvents | None = None,
        tracer: trace.Tracer | None = None,
    ) -> None:
        self._secret = secret
        self._tracer = tracer
        self._clock = clock
        # What new keys are hashed under, and what a key used is moved to (API_KEY_HASH_SCHEME).
        self._hash_scheme = hash_scheme
        # Off unless given: one-shot callers (the CLI) gain nothing from one.
        self.cache = cache if cache is not None else KeyCache(0)
        # The server's limit on creating keys per account; the CLI (an operator) has none.
        self._creation_limit = creation_limit
        # The server's webhooks; the CLI (an operator's) tells no one.
        self._events = events

    async def authenticate(self, database: Database, authorization: str | None) -> Principal:
        """`_authenticate` in a span naming the key by its id (a refusal: its code)."""
        with use_case_span(self._tracer, "wasmwiz.authenticate") as span:
            principal = await self._authenticate(database, authorization)
            if span.is_recording():
                span.set_attribute("wasmwiz.tier", principal.tier.name)
                if principal.api_key_id is not None:
                    span.set_attribute("wasmwiz.api_key.id", str(principal.api_key_id))
            return principal

    async def _authenticate(self, database: Database, authorization: str | None) -> Principal:
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
            if candidate.startswith(API_KEY_PREFIX):
                raise AuthenticationRequired(
                    "That is not a well-formed WasmWiz API key: was it copied whole?"
                )
            raise AuthenticationRequired("That is not a WasmWiz API key (they start with ww_).")
        now = self._clock()
        # The digest under every scheme a stored key may have: one query finds a key
        # made before secrets were derived per purpose too (docs/api-keys.md).
        candidates = candidate_hashes(candidate, self._secret, self._hash_scheme)
        digest = next(iter(candidates))  # the configured scheme's
        cached = self.cache.get(digest, now)
        if cached is not None:
            return cached
        return await self.cache.coalesce(
            digest, partial(self._look_up, database, candidates, digest, now)
        )

    async def _look_up(
        self,
        database: Database,
        candidates: dict[str, HashScheme],
        digest: str,
        now: datetime,
    ) -> Principal:
        """The key's principal from the database (remembered by the cache), or the refusal."""
        async with database.session() as session:
            key = await key_repository.get_by_any_hash(session, candidates)
        if key is None or candidates.get(key.key_hash) != key.hash_scheme:
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
            scopes=stored_scopes(key.scopes),
            key_limits=key_limits(key),
            is_admin=key.user.is_admin,
        )
        if key.hash_scheme != candidates[digest]:
            await self._rehash(database, key, digest)
        self.cache.put(digest, principal, key_expires_at=key.expires_at)
        return principal

    async def _rehash(self, database: Database, key: ApiKey, digest: str) -> None:
        """Move a key stored under the other hash scheme to the configured one, once.

        The one write authentication ever does, once per key; if it fails the key still
        works and the next use tries again.
        """
        try:
            async with database.writer() as session, session.begin():
                await key_repository.rehash(
                    session,
                    key.id,
                    old_hash=key.key_hash,
                    new_hash=digest,
                    hash_scheme=self._hash_scheme,
                )
        except SQLAlchemyError as exc:
            logger.warning("could not rehash API key %s: %s", key.id, exc)

    async def create(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        *,
        name: str,
        expires_at: datetime | None = None,
        scopes: frozenset[Scope] = DEFAULT_KEY_SCOPES,
        limits: KeyLimits | None = None,
        granting: frozenset[Scope] | None = None,
    ) -> CreatedApiKey:
        """A new key for `user_id`, within its tier's key cap; in a `Database.writer()` session.

        `granting`: the scopes of the key asking (None for the web pages and the CLI); a
        key can give a new key only scopes it holds itself. `limits`: the key's own,
        at most its account's. With a creation limit (the server's), `session` must not
        have begun yet: the limit is spent before the write transaction opens, so the
        limiter's round trip holds no connection and no SQLite write lock, and a refused
        creation touches the database not at all. In the transaction, the account's row
        is locked first, so keys created at once are counted one after the other and the
        cap holds exactly.
        """
        name = _checked_name(name)
        now = self._clock()
        _check_expiry(expires_at, now)
        _check_scopes(scopes, granting)
        if self._creation_limit is not None:
            if session.in_transaction():
                raise RuntimeError("spend the key-creation limit before the transaction begins")
            await self._creation_limit.spend(user_id)
        if not await user_repository.lock(session, user_id):
            raise NotFound("No such user.")
        user = await user_repository.get_by_id(session, user_id)
        assert user is not None
        _check_admin_scope(scopes, user.is_admin)
        limits = limits or KeyLimits()
        _check_key_limits(limits, tier_limits(user.tier))
        live = await key_repository.count_live(session, user_id, now=now)
        if live >= user.tier.max_api_keys:
            raise Conflict(
                f"Your account has {live} working keys, the most the {user.tier.name} tier "
                "allows; revoke one first.",
                code=ProblemCode.KEY_LIMIT_REACHED,
            )
        generated: GeneratedApiKey = generate_api_key(self._secret, self._hash_scheme)
        key = key_repository.create(
            session,
            user_id=user_id,
            name=name,
            prefix=generated.display_prefix,
            key_hash=generated.digest,
            hash_scheme=generated.hash_scheme,
            expires_at=expires_at,
            scopes=format_scopes(scopes),
            requests_per_minute=limits.requests_per_minute,
            requests_per_day=limits.requests_per_day,
            max_concurrent_executions=limits.max_concurrent_executions,
        )
        await session.flush()
        if self._events is not None:
            await self._events.key_created(session, key)
        return CreatedApiKey(key=key, plaintext=generated.plaintext)

    async def list_for_user(
        self, session: AsyncSession, user_id: uuid.UUID, *, limit: int = 50, offset: int = 0
    ) -> list[ApiKey]:
        return await key_repository.list_for_user(session, user_id, limit=limit, offset=offset)

    async def revoke(
        self, session: AsyncSession, key_id: uuid.UUID, *, user_id: uuid.UUID | None = None
    ) -> bool:
        """Revoke a key; False if it was revoked already (nothing changes then)."""
        revoked = await key_repository.revoke(session, key_id, user_id=user_id, now=self._clock())
        if not revoked or self._events is not None:
            key = await key_repository.get_by_id(session, key_id, user_id=user_id)
            if key is None:
                raise NotFound("No such API key.")
            if revoked and self._events is not None:
                await session.refresh(key)
                await self._events.keys_revoked(session, [key])
        await session.flush()
        self.cache.forget_key(key_id)
        return revoked

    async def revoke_all(self, session: AsyncSession, user_id: uuid.UUID) -> int:
        """Revoke every key of a user; how many were still unrevoked.

        This process stops answering for them at once (the cache forgets the user and
        does not cache their keys again for its lifetime); other replicas within
        API_KEY_CACHE_SECONDS.
        """
        now = self._clock()
        live = await key_repository.unrevoked(session, user_id) if self._events else []
        count = await key_repository.revoke_all(session, user_id, now=now)
        await session.flush()
        if self._events is not None and live:
            for key in live:
                await session.refresh(key)
            await self._events.keys_revoked(session, [key for key in live if key.revoked_at])
        self.cache.forget_user(user_id)
        return count

    async def revoke_many(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        key_ids: Sequence[uuid.UUID],
        *,
        current_key_id: uuid.UUID | None = None,
    ) -> list[BulkItem]:
        """Revoke these keys of `user_id`, all or none (docs/api-reference.md, bulk).

        A key revoked already is an item done, unchanged, as with `revoke`. The key
        making the call (`current_key_id`) is refused: a script that lists its keys and
        revokes them would lock itself out by accident; `revoke` revokes it on purpose.
        Each key revoked stops working here at once and tells the webhooks, as `revoke`.
        """
        check_count(key_ids)
        found = await key_repository.get_many_for_update(session, key_ids, user_id=user_id)

        def refuse(key: ApiKey) -> Refusal:
            if key.id == current_key_id:
                return (
                    ProblemCode.CURRENT_KEY,
                    "This is the key making the call; revoke it alone (DELETE /api/v1/keys/{id}).",
                )
            return None

        items = judge(key_ids, found, refuse=refuse, changes=lambda key: key.revoked_at is None)
        refuse_unless_all_ok(BulkAction.REVOKE, items)
        now = self._clock()
        revoked = [found[item.id] for item in items if item.changed]
        for key in revoked:
            key.revoked_at = now
        await self._changed(session, BulkAction.REVOKE, user_id, revoked)
        if self._events is not None and revoked:
            await self._events.keys_revoked(session, revoked)
        return items

    async def update_many(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        key_ids: Sequence[uuid.UUID],
        changes: KeyChanges,
        *,
        granting: frozenset[Scope] | None = None,
    ) -> list[BulkItem]:
        """Set the same `changes` on these keys of `user_id`, all or none.

        The changes are checked as `create` checks a new key's (`granting` likewise);
        a revoked or expired key is refused, so an update cannot bring one back.
        """
        check_count(key_ids)
        values = changes.columns()
        if not values:
            raise InvalidParameter(
                "A bulk update needs at least one change.", code=ProblemCode.INVALID_REQUEST
            )
        now = self._clock()
        if isinstance(changes.name, str):
            values["name"] = _checked_name(changes.name)
        if changes.expires_at is not KEEP:
            _check_expiry(changes.expires_at, now)
        user = await user_repository.get_by_id(session, user_id)
        if user is None:
            raise NotFound("No such user.")
        if changes.scopes is not KEEP:
            _check_scopes(changes.scopes, granting)
            _check_admin_scope(changes.scopes, user.is_admin)
        _check_key_limits(
            KeyLimits(
                requests_per_minute=_given(changes.requests_per_minute),
                requests_per_day=_given(changes.requests_per_day),
                max_concurrent_executions=_given(changes.max_concurrent_executions),
            ),
            tier_limits(user.tier),
        )
        found = await key_repository.get_many_for_update(session, key_ids, user_id=user_id)

        def refuse(key: ApiKey) -> Refusal:
            status = key_status(key, now)
            if status != "active":
                return ProblemCode.KEY_INACTIVE, f"This key is {status}: only working keys change."
            return None

        def differs(key: ApiKey) -> bool:
            return any(getattr(key, column) != value for column, value in values.items())

        items = judge(key_ids, found, refuse=refuse, changes=differs)
        refuse_unless_all_ok(BulkAction.UPDATE, items)
        updated = [found[item.id] for item in items if item.changed]
        for key in updated:
            for column, value in values.items():
                setattr(key, column, value)
        await self._changed(session, BulkAction.UPDATE, user_id, updated)
        return items

    async def _changed(
        self, session: AsyncSession, action: BulkAction, user_id: uuid.UUID, keys: list[ApiKey]
    ) -> None:
        """Write a bulk call's changes (the flush batches the keys' UPDATEs) and stop
        answering for the keys as they were."""
        await session.flush()
        for key in keys:
            self.cache.forget_key(key.id)
        logger.info(
            "bulk %s: %d keys of user %s changed",
            action,
            len(keys),
            user_id,
            extra={
                "event": "keys_bulk",
                "action": str(action),
                "user_id": str(user_id),
                "key_ids": [str(key.id) for key in keys],
            },
        )


def _given(value: int | Literal[Keep.KEEP] | None) -> int | None:
    return None if value is KEEP else value


def _checked_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_KEY_NAME_LENGTH:
        raise InvalidRequest(
            f"A key name needs 1 to {MAX_KEY_NAME_LENGTH} characters.",
            code=ProblemCode.INVALID_NAME,
        )
    return name


def _check_expiry(expires_at: datetime | None, now: datetime) -> None:
    if expires_at is not None and expires_at.tzinfo is None:
        raise InvalidRequest(
            "The expiry needs a time zone, e.g. 2027-01-01T00:00:00Z.",
            code=ProblemCode.INVALID_EXPIRY,
        )
    if expires_at is not None and expires_at <= now:
        raise InvalidRequest("The expiry must be in the future.", code=ProblemCode.INVALID_EXPIRY)


def _check_scopes(scopes: frozenset[Scope], granting: frozenset[Scope] | None) -> None:
    """At least one scope, and (`granting`: the asking key's) none the asking key lacks."""
    if not scopes:
        raise InvalidRequest("A key needs at least one scope.", code=ProblemCode.INVALID_SCOPE)
    if granting is not None and not scopes <= granting:
        missing = format_scopes(scopes - granting)
        raise PermissionDenied(
            f"A key can give keys only scopes it holds itself; this one lacks {missing}.",
            code=ProblemCode.INSUFFICIENT_SCOPE,
        )


def _check_admin_scope(scopes: frozenset[Scope], is_admin: bool) -> None:
    if Scope.ADMIN in scopes and not is_admin:
        raise PermissionDenied(
            "Only an administrator can give a key the `admin` scope.",
            code=ProblemCode.INSUFFICIENT_SCOPE,
        )


def _check_key_limits(limits: KeyLimits, tier: TierLimits) -> None:
    """A key's own limits are at least 1 and at most its account's."""
    for label, own, account in (
        ("per-minute", limits.requests_per_minute, tier.requests_per_minute),
        ("daily", limits.requests_per_day, tier.requests_per_day),
        ("concurrency", limits.max_concurrent_executions, tier.max_concurrent_executions),
    ):
        if own is not None and not 1 <= own <= account:
            raise InvalidRequest(
                f"A key's own {label} limit must be from 1 to the account's ({account}).",
                code=ProblemCode.INVALID_KEY_LIMIT,
            )
