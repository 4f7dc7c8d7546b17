"""A short-lived, revocation-safe memory of recently authenticated API keys.

Authenticating a key costs an HMAC and one indexed query; the query (a pool checkout,
a round trip, building ORM objects) is most of what the request path spends outside the
sandbox. Within `ttl_seconds` of a successful lookup, the same key is answered from
memory instead.

What that costs in freshness, and the bounds we promise (docs/performance.md):

- A change made through this process (revoking a key, deactivating an account,
  changing its tier) takes effect at once: the entries go, and the key and user are
  not cached again for `ttl_seconds`, so a lookup that raced the change and read the
  old row cannot put it back.
- A change made elsewhere (another replica, `wasmwiz keys revoke`, SQL) takes effect
  here within `ttl_seconds`, because no entry outlives that.
- Expiry is checked on every hit against the key's `expires_at`, never cached.
- Unknown, revoked and expired keys are never cached: a refusal always asks the database.

`ttl_seconds=0` turns the cache off.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

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

    def forget_key(self, key_id: uuid.UUID) -> None:
        """A key was revoked or changed here: stop answering for it now."""
        self._forget(key_id, lambda principal: principal.api_key_id == key_id)

    def forget_user(self, user_id: uuid.UUID) -> None:
        """A user was deactivated or changed tier here: stop answering for their keys now."""
        self._forget(user_id, lambda principal: principal.user_id == user_id)

    def _forget(self, changed: uuid.UUID, matches: Callable[[Principal], bool]) -> None:
        now = self._monotonic()
        self._changed = {
            changed_id: until for changed_id, until in self._changed.items() if until > now
        }
        self._changed[changed] = now + self.ttl_seconds
        for digest in [d for d, entry in self._entries.items() if matches(entry.principal)]:
            del self._entries[digest]

    def _recently_changed(self, changed: uuid.UUID | None, now: float) -> bool:
        until = self._changed.get(changed) if changed is not None else None
        return until is not None and until > now

    def _drop_stale(self, now: float) -> None:
        for digest in [d for d, entry in self._entries.items() if entry.fresh_until <= now]:
            del self._entries[digest]
