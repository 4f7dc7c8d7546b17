"""A short-lived, revocation-safe memory of recently authenticated API keys.

Authenticating a key costs an HMAC and one indexed query; the query (a pool checkout,
a round trip, building ORM objects) is most of what the request path spends outside the
sandbox. Within `ttl_seconds` of a successful lookup, the same key is answered from
memory instead.

What that costs in freshness, and the bounds we promise (docs/performance.md):

- A change made through this process (revoking a key or all of an account's,
  deactivating or deleting an account, changing its tier) takes effect at once: the
  entries go, and the key and user are not cached again for `ttl_seconds`, so a lookup
  that raced the change and read the old row cannot put it back.
- A change made elsewhere (another replica, `wasmwiz keys revoke`, SQL) takes effect
  here within `ttl_seconds`, because no entry outlives that. So does editing a tier's
  limits, here too (`clear()`), since a principal carries its tier's limits.
- Expiry is checked on every hit against the key's `expires_at`, never cached.
- Unknown, revoked and expired keys are never cached: a refusal always asks the database.

Requests that miss while a lookup of the same key is in flight wait for that lookup
instead of starting their own (`coalesce`). Without that, every request arriving
between an entry's expiry and the first lookup's answer queued its own query: at 200
closed-loop clients on one key that was 200 queries behind one another, and the last
request waited seven seconds (bench/fairness.py). A change made here drops the lookups
in flight too, so a request that arrives after it never gets an answer read before it.

`ttl_seconds=0` turns the cache off, coalescing included: every request asks the database.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from wasmwiz.services.principals import Principal

DEFAULT_MAX_ENTRIES = 10_000


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    key_expires_at: datetime | None
    fresh_until: float


class KeyCache:
    """Principals by key digest; only ever touched from the event loop's thread."""

    def __init__(
        self,
        ttl_seconds: float,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl_seconds < 0:
            raise ValueError("ttl_seconds cannot be negative")
        self.ttl_seconds = ttl_seconds
        self._max_entries = max_entries
        self._monotonic = monotonic
        self._entries: dict[str, _Entry] = {}
        # Key and user ids changed through this process, until when they stay uncached.
        self._changed: dict[uuid.UUID, float] = {}
        # Lookups in flight, by key digest.
        self._in_flight: dict[str, asyncio.Future[Principal]] = {}

    @property
    def enabled(self) -> bool:
        return self.ttl_seconds > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str, now: datetime) -> Principal | None:
        """The cached principal for this key digest, if fresh and the key not yet expired."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        expired = entry.key_expires_at is not None and entry.key_expires_at <= now
        if expired or self._monotonic() >= entry.fresh_until:
            del self._entries[digest]
            return None
        return entry.principal

    def put(self, digest: str, principal: Principal, *, key_expires_at: datetime | None) -> None:
        """Remember an active key's principal, unless its key or user just changed here."""
        if not self.enabled:
            return
        now = self._monotonic()
        if self._recently_changed(principal.api_key_id, now) or self._recently_changed(
            principal.user_id, now
        ):
            return
        if digest not in self._entries and len(self._entries) >= self._max_entries:
            self._drop_stale(now)
            if len(self._entries) >= self._max_entries:
                # Insertion order: the oldest entry is the first.
                del self._entries[next(iter(self._entries))]
        self._entries[digest] = _Entry(principal, key_expires_at, now + self.ttl_seconds)

    async def coalesce(self, digest: str, look_up: Callable[[], Awaitable[Principal]]) -> Principal:
        """The answer of the lookup of `digest` in flight, or of a new one by `look_up`.

        The lookup runs as a task of its own: a waiter that goes away (its client hung
        up) does not cancel it for the others. Its error, if any, reaches every waiter.
        """
        if not self.enabled:
            return await look_up()
        lookup = self._in_flight.get(digest)
        if lookup is None:
            lookup = asyncio.ensure_future(look_up())
            self._in_flight[digest] = lookup
            lookup.add_done_callback(partial(self._lookup_done, digest))
        return await asyncio.shield(lookup)

    def _lookup_done(self, digest: str, lookup: asyncio.Future[Principal]) -> None:
        if self._in_flight.get(digest) is lookup:
            del self._in_flight[digest]
        if not lookup.cancelled():
            lookup.exception()  # retrieved, in case every waiter went away

    def forget_key(self, key_id: uuid.UUID) -> None:
        """A key was revoked or changed here: stop answering for it now."""
        self._forget(key_id, lambda principal: principal.api_key_id == key_id)

    def forget_user(self, user_id: uuid.UUID) -> None:
        """A user was deactivated or changed tier here: stop answering for their keys now."""
        self._forget(user_id, lambda principal: principal.user_id == user_id)

    def clear(self) -> None:
        """A tier changed here: every entry may hold its old limits, so drop them all.

        Lookups racing the change may cache the old row again, for at most `ttl_seconds`:
        the same bound as a change made on another replica.
        """
        self._entries.clear()
        self._in_flight.clear()

    def _forget(self, changed: uuid.UUID, matches: Callable[[Principal], bool]) -> None:
        now = self._monotonic()
        self._changed = {
            changed_id: until for changed_id, until in self._changed.items() if until > now
        }
        self._changed[changed] = now + self.ttl_seconds
        # A request from now on starts a lookup of its own rather than join one that
        # may have read the row before the change.
        self._in_flight.clear()
        for digest in [d for d, entry in self._entries.items() if matches(entry.principal)]:
            del self._entries[digest]

    def _recently_changed(self, changed: uuid.UUID | None, now: float) -> bool:
        until = self._changed.get(changed) if changed is not None else None
        return until is not None and until > now

    def _drop_stale(self, now: float) -> None:
        for digest in [d for d, entry in self._entries.items() if entry.fresh_until <= now]:
            del self._entries[digest]
