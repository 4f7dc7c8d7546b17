"""Stored modules on both databases: bytes kept once, rows per account, names, quotas."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tests.persistence.factories import make_user
from wasmwiz.persistence.models import WasmBlob, WasmModule, WasmModuleName
from wasmwiz.persistence.repositories import tiers
from wasmwiz.persistence.repositories import wasm_modules as repository

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024


async def store(session: AsyncSession, user_id: uuid.UUID, data: bytes) -> WasmModule:
    return await repository.add(
        session,
        user_id=user_id,
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
        imports='[{"module": "wasi_snapshot_preview1", "name": "fd_write", "kind": "func"}]',
        exports='[{"name": "_start", "kind": "func"}, {"name": "memory", "kind": "memory"}]',
        is_command=True,
    )


async def count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_bytes_are_kept_once_and_each_account_has_its_own_row(
    db_session: AsyncSession,
) -> None:
    alice, bob = await make_user(db_session), await make_user(db_session)
    first = await store(db_session, alice.id, b"\0asm module one")
    again = await store(db_session, alice.id, b"\0asm module one")
    bobs = await store(db_session, bob.id, b"\0asm module one")

    assert again.id == first.id
    assert bobs.id != first.id
    assert bobs.sha256 == first.sha256
    assert await count(db_session, WasmBlob) == 1
    assert await count(db_session, WasmModule) == 2
    assert await repository.content(db_session, first.sha256) == b"\0asm module one"


async def test_an_account_finds_only_its_own_modules(db_session: AsyncSession) -> None:
    alice, mallory = await make_user(db_session), await make_user(db_session)
    stored = await store(db_session, alice.id, b"\0asm secret")

    assert await repository.find_owned(db_session, alice.id, stored.sha256) is not None
    assert await repository.find_owned(db_session, mallory.id, stored.sha256) is None
    await repository.set_name(db_session, alice.id, "grader", stored.id)
    assert await repository.find_by_name(db_session, mallory.id, "grader") is None


async def test_pages_follow_a_keyset_cursor_newest_first(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    stored = [await store(db_session, user.id, f"\0asm {i}".encode()) for i in range(5)]
    # Two share a creation time: the id breaks the tie, so neither is skipped or repeated.
    base = stored[0].created_at
    for index, module in enumerate(stored):
        module.created_at = base + timedelta(seconds=index if index != 3 else 2)
    await db_session.flush()

    pages, cursor = [], None
    while True:
        page = await repository.list_owned(db_session, user.id, limit=2, before=cursor)
        if not page:
            break
        pages.append(page)
        cursor = (page[-1].created_at, page[-1].id)

    listed = [module.id for page in pages for module in page]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(listed) == sorted(module.id for module in stored)
    assert listed[0] == stored[4].id
    assert listed[-1] == stored[0].id


async def test_a_name_points_at_one_module_and_moves(db_session: AsyncSession) -> None:
    user = await make_user(db_session)
    old = await store(db_session, user.id, b"\0asm v1")
    new = await store(db_session, user.id, b"\0asm v2")

    await repository.set_name(db_session, user.id, "grader", old.id)
    found = await repository.find_by_name(db_session, user.id, "grader")
    assert found is not None
    assert found.id == old.id
    await repository.set_name(db_session, user.id, "grader", new.id)
    await repository.set_name(db_session, user.id, "latest", new.id)

    found = await repository.find_by_name(db_session, user.id, "grader")
    assert found is not None
    assert found.id == new.id
    names = await repository.names_by_module(db_session, [old.id, new.id])
    assert names == {new.id: ["grader", "latest"]}
    assert await repository.names_by_module(db_session, []) == {}


async def test_deleting_keeps_bytes_another_account_stored_and_drops_the_last_copy(
    db_session: AsyncSession,
) -> None:
    alice, bob = await make_user(db_session), await make_user(db_session)
    alices = await store(db_session, alice.id, b"\0asm shared")
    await store(db_session, bob.id, b"\0asm shared")
    await repository.set_name(db_session, alice.id, "tool", alices.id)

    assert await repository.delete_owned(db_session, alice.id, alices.sha256)
    assert not await repository.delete_owned(db_session, alice.id, alices.sha256)
    assert await repository.find_owned(db_session, alice.id, alices.sha256) is None
    assert await count(db_session, WasmModuleName) == 0
    assert await repository.content(db_session, alices.sha256) == b"\0asm shared"

    assert await repository.delete_owned(db_session, bob.id, alices.sha256)
    assert await repository.content(db_session, alices.sha256) is None
    assert await count(db_session, WasmBlob) == 0


async def test_storage_used_and_deleting_an_account_s_modules(db_session: AsyncSession) -> None:
    alice, bob = await make_user(db_session), await make_user(db_session)
    assert await repository.storage_used(db_session, alice.id) == repository.StorageUsed(0, 0)
    await store(db_session, alice.id, b"x" * 100)
    await store(db_session, alice.id, b"y" * 50)
    await store(db_session, bob.id, b"y" * 50)

    assert await repository.storage_used(db_session, alice.id) == repository.StorageUsed(2, 150)
    assert await repository.delete_all_for_user(db_session, alice.id) == 2
    assert await repository.storage_used(db_session, alice.id) == repository.StorageUsed(0, 0)
    # Bob's copy of the shared bytes stays; Alice's own bytes are gone.
    assert await repository.content(db_session, hashlib.sha256(b"y" * 50).hexdigest())
    assert await repository.content(db_session, hashlib.sha256(b"x" * 100).hexdigest()) is None


@pytest.mark.parametrize(
    ("tier", "modules", "size"),
    [("free", 10, 50 * MiB), ("basic", 100, 500 * MiB), ("pro", 1000, 5 * 1024 * MiB)],
)
async def test_each_tier_has_its_storage_quota(
    db_session: AsyncSession, tier: str, modules: int, size: int
) -> None:
    found = await tiers.get_by_name(db_session, tier)
    assert found is not None
    assert (found.max_stored_modules, found.max_stored_module_bytes) == (modules, size)
