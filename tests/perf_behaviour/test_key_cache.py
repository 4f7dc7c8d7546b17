"""The API-key cache: answers from memory, yet a revoked key stops working within its bound."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import event, update

from tests.api import wat
from tests.fixtures.app import TEST_SALT, Account, ServerFactory, create_account
from wasmwiz.errors import AuthenticationRequired, PermissionDenied
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import ApiKey
from wasmwiz.services.accounts import AccountService
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.key_cache import KeyCache
from wasmwiz.services.principals import Principal, TierLimits

# Counts queries, not time: with the parallel pass, under coverage.
pytestmark = pytest.mark.parallel

TTL = 5.0
NOW = datetime(2030, 1, 1, tzinfo=UTC)


class Ticks:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def principal(user_id: uuid.UUID | None = None) -> Principal:
    return Principal(
        user_id=user_id or uuid.uuid4(),
        email="a@example.com",
        tier=TierLimits("pro", 500, 50_000, 50, None),
        api_key_id=uuid.uuid4(),
    )


def test_an_entry_lives_exactly_its_ttl() -> None:
    ticks = Ticks()
    cache = KeyCache(TTL, monotonic=ticks)
    cached = principal()
    cache.put("d", cached, key_expires_at=None)
    ticks.now += TTL - 0.001
    assert cache.get("d", NOW) is cached
    ticks.now += 0.001
    assert cache.get("d", NOW) is None
    assert len(cache) == 0


def test_key_expiry_is_checked_on_every_hit() -> None:
    cache = KeyCache(TTL, monotonic=Ticks())
    cache.put("d", principal(), key_expires_at=NOW + timedelta(seconds=1))
    assert cache.get("d", NOW) is not None
    assert cache.get("d", NOW + timedelta(seconds=1)) is None


def test_a_forgotten_key_is_not_cached_again_by_a_racing_lookup() -> None:
    """A lookup that read the row before the revocation committed cannot put it back."""
    ticks = Ticks()
    cache = KeyCache(TTL, monotonic=ticks)
    stale = principal()
    assert stale.api_key_id is not None
    cache.put("d", stale, key_expires_at=None)
    cache.forget_key(stale.api_key_id)
    assert cache.get("d", NOW) is None
    cache.put("d", stale, key_expires_at=None)
    assert cache.get("d", NOW) is None
    ticks.now += TTL
    cache.put("d", stale, key_expires_at=None)
    assert cache.get("d", NOW) is stale


def test_forgetting_a_user_drops_all_their_keys_and_no_one_elses() -> None:
    cache = KeyCache(TTL, monotonic=Ticks())
    user = uuid.uuid4()
    cache.put("a", principal(user), key_expires_at=None)
    cache.put("b", principal(user), key_expires_at=None)
    other = principal()
    cache.put("c", other, key_expires_at=None)
    cache.forget_user(user)
    assert cache.get("a", NOW) is None
    assert cache.get("b", NOW) is None
    assert cache.get("c", NOW) is other


def test_the_cache_is_bounded_and_zero_ttl_turns_it_off() -> None:
    cache = KeyCache(TTL, max_entries=3, monotonic=Ticks())
    for digest in "abcde":
        cache.put(digest, principal(), key_expires_at=None)
    assert len(cache) == 3
    assert cache.get("a", NOW) is None
    assert cache.get("e", NOW) is not None
    off = KeyCache(0)
    off.put("a", principal(), key_expires_at=None)
    assert off.get("a", NOW) is None
    with pytest.raises(ValueError):
        KeyCache(-1)


# On a real database (SQLite and PostgreSQL): the bound holds end to end.


@pytest.mark.anyio
async def test_a_revocation_made_elsewhere_takes_effect_within_the_ttl(
    database: Database, migrated_database_url: str
) -> None:
    account = await create_account(migrated_database_url)
    ticks = Ticks()
    service = ApiKeyService(TEST_SALT, cache=KeyCache(TTL, monotonic=ticks))
    bearer = f"Bearer {account.api_key}"
    await service.authenticate(database, bearer)
    # Another process revokes the key: this one is not told.
    async with database.session() as session:
        await session.execute(
            update(ApiKey)
            .where(ApiKey.id == account.api_key_id)
            .values(revoked_at=datetime.now(UTC))
        )
        await session.commit()
    ticks.now += TTL - 0.01
    assert (await service.authenticate(database, bearer)).api_key_id == account.api_key_id
    ticks.now += 0.01
    with pytest.raises(AuthenticationRequired, match="revoked"):
        await service.authenticate(database, bearer)


@pytest.mark.anyio
async def test_a_revocation_or_deactivation_here_takes_effect_at_once(
    database: Database, migrated_database_url: str
) -> None:
    first = await create_account(migrated_database_url)
    second = await create_account(migrated_database_url)
    cache = KeyCache(TTL, monotonic=Ticks())
    keys = ApiKeyService(TEST_SALT, cache=cache)
    accounts = AccountService(key_cache=cache)
    for account in (first, second):
        await keys.authenticate(database, f"Bearer {account.api_key}")
    async with database.session() as session:
        await keys.revoke(session, first.api_key_id)
        await session.commit()
    with pytest.raises(AuthenticationRequired, match="revoked"):
        await keys.authenticate(database, f"Bearer {first.api_key}")
    async with database.session() as session:
        await accounts.set_active(session, second.user_id, False, acting=first.user_id)
        await session.commit()
    with pytest.raises(PermissionDenied):
        await keys.authenticate(database, f"Bearer {second.api_key}")


@pytest.mark.anyio
async def test_a_key_that_revokes_itself_over_http_is_refused_on_the_next_request(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    """The attack: keep using a key after revoking it, hoping the cache still has it."""
    server = server_factory(api_key_cache_seconds=30)
    account: Account = await create_account(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        files = {"wasm": ("m.wat", wat.HELLO.encode())}
        for _ in range(2):  # the second is answered from the cache
            ok = await client.post("/api/v1/execute", headers=account.headers, files=files)
            assert ok.status_code == 200, ok.text
        revoked = await client.delete(f"/api/v1/keys/{account.api_key_id}", headers=account.headers)
        assert revoked.status_code == 204, revoked.text
        refused = await client.post("/api/v1/execute", headers=account.headers, files=files)
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"


@contextmanager
def key_lookups(database: Database) -> Iterator[list[str]]:
    """The SELECTs on api_keys that `database` runs while the block runs."""
    queries: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if "api_keys" in statement and statement.lstrip().upper().startswith("SELECT"):
            queries.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield queries
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)


@pytest.mark.anyio
async def test_requests_that_miss_together_share_one_lookup(
    database: Database, migrated_database_url: str
) -> None:
    """At expiry, a crowd of requests for one key asks the database once, not once each."""
    account = await create_account(migrated_database_url)
    ticks = Ticks()
    service = ApiKeyService(TEST_SALT, cache=KeyCache(TTL, monotonic=ticks))
    bearer = f"Bearer {account.api_key}"
    with key_lookups(database) as queries:
        await service.authenticate(database, bearer)
        assert len(queries) == 1
        ticks.now += TTL  # the entry expires
        crowd = await asyncio.gather(*(service.authenticate(database, bearer) for _ in range(50)))
        assert {principal.api_key_id for principal in crowd} == {account.api_key_id}
        assert len(queries) == 2

        # With the cache off, every request asks.
        uncached = ApiKeyService(TEST_SALT, cache=KeyCache(0))
        await asyncio.gather(*(uncached.authenticate(database, bearer) for _ in range(5)))
        assert len(queries) == 7


@pytest.mark.anyio
async def test_a_refusal_reaches_every_waiter_and_a_revocation_here_is_not_joined(
    database: Database, migrated_database_url: str
) -> None:
    account = await create_account(migrated_database_url)
    cache = KeyCache(TTL, monotonic=Ticks())
    service = ApiKeyService(TEST_SALT, cache=cache)
    unknown = f"Bearer {account.api_key[:-4]}zzzz"
    outcomes = await asyncio.gather(
        *(service.authenticate(database, unknown) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(outcome, AuthenticationRequired) for outcome in outcomes)

    # A lookup is in flight when the key changes here (revoke() writes, then forgets the
    # key): a request arriving after that starts a lookup of its own instead of taking
    # the answer of one that may have read the row before the change.
    bearer = f"Bearer {account.api_key}"
    with key_lookups(database) as queries:
        early = asyncio.ensure_future(service.authenticate(database, bearer))
        await asyncio.sleep(0)  # its lookup is in flight: a query takes several turns
        cache.forget_key(account.api_key_id)
        late = await service.authenticate(database, bearer)
        await early
    assert late.api_key_id == account.api_key_id
    assert len(queries) == 2
