"""The result cache: a deterministic run's result, kept and given back for the same inputs.

A run with `deterministic=true` has virtual clocks and a seeded `random_get`, so what it
prints is a function of what the sandbox is handed: the module's bytes (their SHA-256),
the whole `RunRequest` (stdin, args, env, argv[0], seed), the `Limits` that apply (the
tier's fuel cap included: `ExecutionService._limits_for`) and the sandbox's fingerprint
(the engine's configuration, WasmWiz's version, the acceptance rules). The key is an
HMAC-SHA256 of every field of those, walked generically (`_feed`), so a field added to
`RunRequest` or `Limits` is part of the key without anyone remembering to add it.

What is not cached, because it is not such a function:
- a `timeout`: wall-clock time depends on the machine's load, not only on the inputs;
- a run with a directory (`files`, `archive` or `collect`): its writes draw on
  FILES_BUDGET, which every run with files shares, so a run's ENOSPC depends on what else
  runs at the time.

The key also holds the account: the inputs alone would make sharing across accounts
correct, but a shared entry would tell one account (by `cached: true`, or by the answer's
speed) that another ran exactly these inputs lately (docs/security.md, "The result cache").

Entries are authenticated: a value is stored with an HMAC over its key and bytes, under a
key derived from SECRET_KEY, so whoever can write to the store (Redis) cannot make the
service answer with a result it did not compute, nor move one entry under another key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import time
import uuid
from typing import Any

from wasmwiz.observability.metrics import Metrics
from wasmwiz.sandbox import Limits, Outcome, RunRequest, RunResult
from wasmwiz.services.result_store import ResultStore, ResultStoreUnavailable
from wasmwiz.services.run_codec import decode_result, encode_result

logger = logging.getLogger(__name__)

# Hashing this many bytes or more goes to a thread: about a millisecond of SHA-256.
_THREAD_HASH_BYTES = 256 * 1024
_KEY_CONTEXT = b"wasmwiz result cache key v1\0"
_VALUE_CONTEXT = b"wasmwiz result cache value v1\0"
_TAG_BYTES = hashlib.sha256().digest_size
_WARNING_INTERVAL_SECONDS = 60.0


def covers(run: RunRequest) -> bool:
    """Whether a run's result may be cached at all (see the module's docstring): a
    deterministic run without a directory. The caller decides the rest (an explicit seed,
    `cache=true`)."""
    return run.deterministic and run.files is None and not run.collect


def keeps(result: RunResult) -> bool:
    """Whether a result is worth keeping: every outcome but a timeout, which a quieter
    machine might not have reached."""
    return result.outcome is not Outcome.TIMEOUT and not result.files


async def module_digest(data: bytes | memoryview) -> str:
    """The SHA-256 of an uploaded module's bytes (text or binary), as the sandbox's own
    compile cache keys it; a large one is hashed off the event loop."""
    if len(data) >= _THREAD_HASH_BYTES:
        return await asyncio.to_thread(_sha256, data)
    return _sha256(data)


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class ResultCache:
    """Looks results up and keeps them, in a `ResultStore`; counts lookups by result.

    A store that cannot answer costs a run, never a request: the lookup counts `error`
    and the run goes ahead; a result that cannot be kept is logged (at most once a minute).
    """

    def __init__(
        self,
        store: ResultStore,
        *,
        secret: bytes,
        fingerprint: str,
        metrics: Metrics,
        ttl_seconds: float,
        max_entry_bytes: int,
    ) -> None:
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive: no cache at all is None")
        self._store = store
        self._secret = secret
        self._fingerprint = fingerprint
        self._metrics = metrics
        self._ttl = ttl_seconds
        self._max_entry_bytes = max_entry_bytes
        self._last_warning = -_WARNING_INTERVAL_SECONDS

    @property
    def store(self) -> ResultStore:
        return self._store

    async def key(
        self, account: uuid.UUID, module_sha256: str, run: RunRequest, limits: Limits
    ) -> bytes:
        """The entry's key: an HMAC of the account, the module's digest, the sandbox's
        fingerprint, and every field of the run request and of its limits."""
        if len(run.stdin) >= _THREAD_HASH_BYTES:
            return await asyncio.to_thread(self._key, account, module_sha256, run, limits)
        return self._key(account, module_sha256, run, limits)

    def _key(
        self, account: uuid.UUID, module_sha256: str, run: RunRequest, limits: Limits
    ) -> bytes:
        mac = hmac.new(self._secret, _KEY_CONTEXT, hashlib.sha256)
        _feed(mac, (str(account), module_sha256, self._fingerprint, run, limits))
        return mac.digest()

    async def recall(self, key: bytes) -> RunResult | None:
        """The result kept under `key`, or None (a miss, or a store that cannot answer)."""
        try:
            stored = await self._store.get(key)
        except ResultStoreUnavailable as exc:
            self._metrics.result_cache.labels("error").inc()
            self._warn(exc)
            return None
        result = None if stored is None else self._open(key, stored)
        self._metrics.result_cache.labels("miss" if result is None else "hit").inc()
        return result

    async def remember(self, key: bytes, result: RunResult) -> None:
        """Keep `result` under `key`, unless it is a timeout or over the entry limit."""
        if not keeps(result):
            return
        body = encode_result(result)
        if _TAG_BYTES + len(body) > self._max_entry_bytes:
            return
        try:
            await self._store.put(key, self._tag(key, body) + body, self._ttl)
        except ResultStoreUnavailable as exc:
            self._warn(exc)

    async def close(self) -> None:
        await self._store.close()

    def _tag(self, key: bytes, body: bytes) -> bytes:
        return hmac.digest(self._secret, _VALUE_CONTEXT + key + body, hashlib.sha256)

    def _open(self, key: bytes, stored: bytes) -> RunResult | None:
        """The result in an entry whose tag holds, else None (it is then a miss)."""
        tag, body = stored[:_TAG_BYTES], stored[_TAG_BYTES:]
        if not hmac.compare_digest(tag, self._tag(key, body)):
            logger.warning("a result cache entry failed its authentication; ignored")
            return None
        try:
            return decode_result(body)
        except (ValueError, KeyError, TypeError):
            # Written by another version of this code: ignored, and replaced after the run.
            return None

    def _warn(self, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning >= _WARNING_INTERVAL_SECONDS:
            self._last_warning = now
            logger.warning("the result cache cannot be used; runs go ahead: %s", exc)


def _feed(mac: Any, value: object) -> None:
    """Feed `value` to `mac` unambiguously: every item tagged with its type and, when its
    size varies, prefixed with its length. A dataclass is fed field by field, names
    included; a type with no encoding here is an error, never silently left out."""
    if value is None:
        mac.update(b"N")
    elif isinstance(value, bool):
        mac.update(b"T" if value else b"F")
    elif isinstance(value, int | float):
        _feed_bytes(mac, b"I" if isinstance(value, int) else b"R", repr(value).encode())
    elif isinstance(value, str):
        _feed_bytes(mac, b"S", value.encode())
    elif isinstance(value, bytes | bytearray | memoryview):
        _feed_bytes(mac, b"B", value)
    elif isinstance(value, tuple | list):
        mac.update(b"L" + len(value).to_bytes(8, "big"))
        for item in value:
            _feed(mac, item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        _feed_bytes(mac, b"D", type(value).__name__.encode())
        mac.update(len(fields).to_bytes(8, "big"))
        for field in fields:
            _feed(mac, field.name)
            _feed(mac, getattr(value, field.name))
    else:
        raise TypeError(f"no key encoding for {type(value).__name__}")


def _feed_bytes(mac: Any, kind: bytes, data: bytes | bytearray | memoryview) -> None:
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    mac.update(kind + size.to_bytes(8, "big"))
    mac.update(data)
