"""Where the result cache keeps its entries: one Protocol, in this process or in Redis.

A store holds opaque bytes under opaque keys for a time; what they mean, and whether they
can be trusted, is the result cache's business (services/result_cache.py). A store that
cannot answer raises `ResultStoreUnavailable`, and the cache runs the request instead.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Callable
from typing import Protocol, Self

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

# What an entry costs in the memory store beyond its key and value: the dict slot, the
# tuple and the objects' headers, so a flood of tiny entries is bounded too.
ENTRY_OVERHEAD_BYTES = 200


class ResultStoreUnavailable(Exception):
    """The store could not be asked (Redis down, slow or refusing)."""


class ResultStore(Protocol):
    async def get(self, key: bytes) -> bytes | None:
        """The value under `key`, or None when there is none (or it has expired)."""
        ...

    async def put(self, key: bytes, value: bytes, ttl_seconds: float) -> None:
        """Keep `value` under `key` for `ttl_seconds`, replacing any value there."""
        ...

    async def close(self) -> None: ...


class MemoryResultStore:
    """Entries in this process, least recently used evicted past `max_bytes` (keys, values
    and ENTRY_OVERHEAD_BYTES each), expired ones dropped when met. Used from the event
    loop only, so it needs no lock."""

    def __init__(self, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self._clock = clock
        self._entries: collections.OrderedDict[bytes, tuple[float, bytes]] = (
            collections.OrderedDict()
        )
        self._bytes = 0

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    async def get(self, key: bytes) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return value

    async def put(self, key: bytes, value: bytes, ttl_seconds: float) -> None:
        if key in self._entries:
            self._drop(key)
        cost = _cost(key, value)
        if cost > self.max_bytes:
            return
        while self._bytes + cost > self.max_bytes:
            self._drop(next(iter(self._entries)))
        self._entries[key] = (self._clock() + ttl_seconds, value)
        self._bytes += cost

    async def close(self) -> None:
        self._entries.clear()
        self._bytes = 0

    def _drop(self, key: bytes) -> None:
        _, value = self._entries.pop(key)
        self._bytes -= _cost(key, value)


def _cost(key: bytes, value: bytes) -> int:
    return len(key) + len(value) + ENTRY_OVERHEAD_BYTES


class RedisResultStore:
    """Entries in Redis, shared by every replica: one GET or one SET with an expiry each.

    Redis bounds their total (its `maxmemory` and eviction policy; docs/configuration.md);
    the keys are `{prefix}` and the key's hex. `close()` closes the client only when this
    store created it (`from_url`).
    """

    def __init__(self, client: redis.asyncio.Redis, prefix: str = "wasmwiz:rc:") -> None:
        self._redis = client
        self._prefix = prefix
        self._owns_client = False

    @property
    def client(self) -> redis.asyncio.Redis:
        """The Redis client (for its tracing: observability/instrumentation.py)."""
        return self._redis

    @classmethod
    def from_url(
        cls,
        url: str,
        prefix: str = "wasmwiz:rc:",
        *,
        timeout_seconds: float = 0.5,
        max_connections: int = 50,
    ) -> Self:
        """A store owning its client, with short timeouts (as the rate limiter's): a cache
        that is slow to answer costs every cacheable run that long, so a dead Redis must
        show fast, and the run goes ahead without it."""
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        store = cls(redis.asyncio.Redis.from_pool(pool), prefix)
        store._owns_client = True
        return store

    def _name(self, key: bytes) -> str:
        return self._prefix + key.hex()

    async def get(self, key: bytes) -> bytes | None:
        try:
            value = await self._redis.get(self._name(key))
        except (redis.exceptions.RedisError, OSError) as exc:
            raise ResultStoreUnavailable(f"Redis result cache unavailable: {exc!r}") from exc
        if value is None or isinstance(value, bytes):
            return value
        raise ResultStoreUnavailable("Redis answered text: a client that decodes responses")

    async def put(self, key: bytes, value: bytes, ttl_seconds: float) -> None:
        milliseconds = max(1, round(ttl_seconds * 1000))
        try:
            await self._redis.set(self._name(key), value, px=milliseconds)
        except (redis.exceptions.RedisError, OSError) as exc:
            raise ResultStoreUnavailable(f"Redis result cache unavailable: {exc!r}") from exc

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
