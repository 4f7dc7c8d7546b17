"""The result cache's parts: a key that holds every input, entries that cannot be forged,
and stores (memory, Redis) bounded as documented."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio
from prometheus_client import generate_latest

from tests.ops.metrics_text import sample
from wasmwiz.observability.metrics import Metrics
from wasmwiz.sandbox import Limits, Outcome, RunRequest, RunResult
from wasmwiz.sandbox.file_input import InputEntry
from wasmwiz.services.result_cache import ResultCache, covers, keeps, module_digest
from wasmwiz.services.result_store import (
    ENTRY_OVERHEAD_BYTES,
    MemoryResultStore,
    RedisResultStore,
    ResultStoreUnavailable,
)

pytestmark = pytest.mark.anyio

REDIS_URL = os.environ.get("WASMWIZ_TEST_REDIS_URL")
PREFIX = f"wasmwiz:test:{uuid.uuid4().hex}:"
ACCOUNT = uuid.UUID("7c1f0c56-8f3e-4d43-b2a4-6f0d2b8e9a11")
DIGEST = "9f2c6a0d5e1b4f7a8c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b"
RUN = RunRequest(stdin=b"1 2\n", args=("-v",), env=(("LANG", "C"),), deterministic=True, seed=7)
LIMITS = Limits()
RESULT = RunResult(
    outcome=Outcome.EXIT_NONZERO,
    exit_code=3,
    stdout=b"\x00\xffbytes\n",
    stderr=b"warning\n",
    stdout_truncated=False,
    stderr_truncated=True,
    duration_seconds=0.0123,
    fuel_consumed=4567,
    memory_peak_bytes=65536,
    error="The program exited with code 3.",
    module_sha256=DIGEST,
    module_size=123,
)

# Another value for every field of what the sandbox is handed: each must change the key.
# A field added to RunRequest or Limits is in the key by construction (result_cache._feed
# walks the fields); this table fails until the new field has a case here too.
OTHER_RUN: dict[str, Any] = {
    "stdin": b"1 3\n",
    "args": ("-w",),
    "env": (("LANG", "D"),),
    "program_name": "other.wasm",
    "deterministic": False,
    "seed": 8,
    "files": (InputEntry("in.txt", b"x"),),
    "collect": ("*",),
}
OTHER_LIMITS: dict[str, Any] = {
    "timeout_seconds": 5.5,
    "memory_bytes": LIMITS.memory_bytes // 2,
    "max_output_bytes": LIMITS.max_output_bytes - 1,
    "max_fuel": 10**9,
    "files_quota_bytes": LIMITS.files_quota_bytes - 1,
    "files_max_entries": LIMITS.files_max_entries - 1,
    "files_max_output_bytes": LIMITS.files_max_output_bytes - 1,
}


def cache(store: Any = None, *, fingerprint: str = "f" * 32, **options: Any) -> ResultCache:
    values: dict[str, Any] = {
        "secret": b"k" * 32,
        "fingerprint": fingerprint,
        "metrics": Metrics(),
        "ttl_seconds": 60.0,
        "max_entry_bytes": 1024 * 1024,
        **options,
    }
    # Not `store or ...`: an empty memory store has a length of 0.
    if store is None:
        store = MemoryResultStore(10 * 1024 * 1024)
    return ResultCache(store, **values)


async def test_the_key_holds_every_field_of_the_run_and_its_limits() -> None:
    results = cache()
    base = await results.key(ACCOUNT, DIGEST, RUN, LIMITS)
    assert base == await results.key(ACCOUNT, DIGEST, dataclasses.replace(RUN), Limits())
    assert set(OTHER_RUN) == {field.name for field in dataclasses.fields(RunRequest)}
    assert set(OTHER_LIMITS) == {field.name for field in dataclasses.fields(Limits)}
    keys = {base}
    for name, value in OTHER_RUN.items():
        keys.add(
            await results.key(ACCOUNT, DIGEST, dataclasses.replace(RUN, **{name: value}), LIMITS)
        )
    for name, value in OTHER_LIMITS.items():
        changed = dataclasses.replace(LIMITS, **{name: value})
        keys.add(await results.key(ACCOUNT, DIGEST, RUN, changed))
    keys.add(await results.key(uuid.uuid4(), DIGEST, RUN, LIMITS))  # another account
    keys.add(await results.key(ACCOUNT, "0" * 64, RUN, LIMITS))  # another module
    keys.add(await cache(fingerprint="e" * 32).key(ACCOUNT, DIGEST, RUN, LIMITS))
    keys.add(await cache(secret=b"j" * 32).key(ACCOUNT, DIGEST, RUN, LIMITS))
    assert len(keys) == 1 + len(OTHER_RUN) + len(OTHER_LIMITS) + 4


async def test_the_key_does_not_mistake_one_field_for_its_neighbour() -> None:
    # Length prefixes: moving a byte from one string to the next is another key.
    results = cache()
    one = dataclasses.replace(RUN, args=("ab", "c"))
    other = dataclasses.replace(RUN, args=("a", "bc"))
    assert await results.key(ACCOUNT, DIGEST, one, LIMITS) != await results.key(
        ACCOUNT, DIGEST, other, LIMITS
    )
    # stdin from the form is a view of its buffer: the same bytes, the same key; a large
    # one is hashed on a thread, to the same key.
    large = b"x" * (1024 * 1024)
    as_bytes = dataclasses.replace(RUN, stdin=large)
    as_view = dataclasses.replace(RUN, stdin=memoryview(bytearray(large)))
    assert await results.key(ACCOUNT, DIGEST, as_bytes, LIMITS) == await results.key(
        ACCOUNT, DIGEST, as_view, LIMITS
    )


async def test_module_digest_is_the_sha256_of_the_upload() -> None:
    small, large = b"(module)", b"\0asm" + bytes(1024 * 1024)
    assert await module_digest(small) == hashlib.sha256(small).hexdigest()
    assert await module_digest(memoryview(large)) == hashlib.sha256(large).hexdigest()


def test_what_is_cached_and_what_is_not() -> None:
    assert covers(RUN)
    assert not covers(dataclasses.replace(RUN, deterministic=False))
    assert not covers(dataclasses.replace(RUN, files=()))  # `collect` alone: a directory
    assert not covers(dataclasses.replace(RUN, collect=("*",)))
    assert keeps(RESULT)
    assert not keeps(dataclasses.replace(RESULT, outcome=Outcome.TIMEOUT))


def lookups(metrics: Metrics, result: str) -> float:
    text = generate_latest(metrics.registry).decode()
    return sample(text, "wasmwiz_result_cache_lookups_total", result=result)


async def test_a_result_comes_back_as_it_was_kept() -> None:
    metrics = Metrics()
    results = cache(metrics=metrics)
    key = await results.key(ACCOUNT, DIGEST, RUN, LIMITS)
    assert await results.recall(key) is None
    await results.remember(key, RESULT)
    assert await results.recall(key) == RESULT
    assert (lookups(metrics, "hit"), lookups(metrics, "miss")) == (1, 1)


async def test_timeouts_and_results_over_the_entry_limit_are_not_kept() -> None:
    store = MemoryResultStore(10 * 1024 * 1024)
    results = cache(store, max_entry_bytes=4096)
    await results.remember(b"t", dataclasses.replace(RESULT, outcome=Outcome.TIMEOUT))
    await results.remember(b"big", dataclasses.replace(RESULT, stdout=b"y" * 4096))
    assert len(store) == 0
    await results.remember(b"fits", RESULT)
    assert len(store) == 1


async def test_an_entry_that_fails_its_tag_is_a_miss() -> None:
    store = MemoryResultStore(10 * 1024 * 1024)
    results = cache(store)
    key = await results.key(ACCOUNT, DIGEST, RUN, LIMITS)
    await results.remember(key, RESULT)
    stored = await store.get(key)
    assert stored is not None
    # A forged output, and a genuine entry moved under another key: both refused.
    await store.put(key, stored.replace(b"bytes", b"forge"), 60)
    assert await results.recall(key) is None
    other = await results.key(ACCOUNT, DIGEST, dataclasses.replace(RUN, seed=8), LIMITS)
    await store.put(other, stored, 60)
    assert await results.recall(other) is None
    # Under another secret (SECRET_KEY changed) nothing kept before is believed.
    await store.put(key, stored, 60)
    assert await cache(store, secret=b"j" * 32).recall(key) is None
    assert await results.recall(key) == RESULT


class _Broken:
    async def get(self, key: bytes) -> bytes | None:
        raise ResultStoreUnavailable("down")

    async def put(self, key: bytes, value: bytes, ttl_seconds: float) -> None:
        raise ResultStoreUnavailable("down")

    async def close(self) -> None:
        return None


async def test_a_store_that_cannot_answer_costs_a_run_not_the_request() -> None:
    metrics = Metrics()
    results = cache(_Broken(), metrics=metrics)
    assert await results.recall(b"k") is None
    await results.remember(b"k", RESULT)  # logged, not raised
    assert (lookups(metrics, "error"), lookups(metrics, "miss")) == (1, 0)


async def test_the_memory_store_is_bounded_by_bytes_least_recently_used_first() -> None:
    value = b"v" * 100
    cost = 1 + len(value) + ENTRY_OVERHEAD_BYTES
    store = MemoryResultStore(3 * cost)
    for key in (b"a", b"b", b"c"):
        await store.put(key, value, 60)
    assert await store.get(b"a") == value  # now the most recently used
    await store.put(b"d", value, 60)
    assert await store.get(b"b") is None
    assert [await store.get(key) is not None for key in (b"a", b"c", b"d")] == [True] * 3
    assert store.total_bytes == 3 * cost
    await store.put(b"huge", b"h" * (3 * cost), 60)  # larger than the whole store: not kept
    assert await store.get(b"huge") is None
    assert len(store) == 3
    await store.put(b"a", b"w" * 10, 60)  # replaced: its old bytes are given back
    assert store.total_bytes == 2 * cost + 1 + 10 + ENTRY_OVERHEAD_BYTES


async def test_the_memory_store_forgets_after_the_ttl() -> None:
    now = [1000.0]
    store = MemoryResultStore(1024 * 1024, clock=lambda: now[0])
    await store.put(b"k", b"v", 30)
    now[0] += 29.9
    assert await store.get(b"k") == b"v"
    now[0] += 0.1
    assert await store.get(b"k") is None
    assert (len(store), store.total_bytes) == (0, 0)


@pytest.fixture
async def redis_store() -> AsyncIterator[RedisResultStore]:
    if REDIS_URL is None:
        pytest.skip("WASMWIZ_TEST_REDIS_URL not set: Redis tests skipped")
    store = RedisResultStore.from_url(REDIS_URL, PREFIX)
    yield store
    await store.close()
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{PREFIX}*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_the_redis_store_keeps_entries_for_the_ttl(redis_store: RedisResultStore) -> None:
    assert REDIS_URL is not None
    results = cache(redis_store, ttl_seconds=30)
    key = await results.key(ACCOUNT, DIGEST, RUN, LIMITS)
    await results.remember(key, RESULT)
    assert await results.recall(key) == RESULT
    # Another replica (its own client) sees it; Redis expires it after the TTL.
    other = RedisResultStore.from_url(REDIS_URL, PREFIX)
    try:
        assert await other.get(key) == await redis_store.get(key)
    finally:
        await other.close()
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        ttl = await client.pttl(PREFIX + key.hex())
    finally:
        await client.aclose()
    assert 29_000 < ttl <= 30_000


async def test_an_unreachable_redis_fails_fast() -> None:
    store = RedisResultStore.from_url("redis://127.0.0.1:1/0", timeout_seconds=0.2)
    try:
        with pytest.raises(ResultStoreUnavailable):
            await store.get(b"k")
        with pytest.raises(ResultStoreUnavailable):
            await store.put(b"k", b"v", 60)
    finally:
        await store.close()
