"""Queries on stored modules: their bytes (once per digest), who owns them, their names,
and the public runtimes every account may run."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.persistence.models import Base, PublicRuntime, WasmBlob, WasmModule, WasmModuleName
from wasmwiz.persistence.repositories._rows import rowcount
from wasmwiz.persistence.types import utcnow

__all__ = [
    "StorageUsed",
    "add",
    "content",
    "delete_all_for_user",
    "delete_name",
    "delete_owned",
    "delete_runtime",
    "find_by_name",
    "find_owned",
    "find_public",
    "find_runtime",
    "list_owned",
    "list_runtimes",
    "names_by_module",
    "publish_runtime",
    "runtime_versions",
    "set_name",
    "storage_used",
]


@dataclass(frozen=True, slots=True)
class StorageUsed:
    modules: int
    bytes: int


def _insert(session: AsyncSession) -> Callable[[type[Base]], postgresql.Insert | sqlite.Insert]:
    """The dialect's INSERT, which can skip or update a row whose key exists (ON CONFLICT)."""
    dialect = session.get_bind().dialect.name
    return postgresql.insert if dialect == "postgresql" else sqlite.insert


async def add(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    sha256: str,
    data: bytes,
    imports: str,
    exports: str,
    is_command: bool,
) -> WasmModule:
    """Store `data` for the account (its bytes once, whoever else stored them) and return
    the account's row for it: the existing one if the account stored these bytes before.
    Concurrent stores of the same bytes, by one account or several, leave one of each row.
    """
    await _add_blob(session, sha256, data)
    insert = _insert(session)
    await session.execute(
        insert(WasmModule)
        .values(
            id=uuid.uuid4(),
            user_id=user_id,
            sha256=sha256,
            size=len(data),
            imports=imports,
            exports=exports,
            is_command=is_command,
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[WasmModule.user_id, WasmModule.sha256])
    )
    stored = await find_owned(session, user_id, sha256)
    assert stored is not None  # inserted above, or there already
    return stored


async def find_owned(session: AsyncSession, user_id: uuid.UUID, sha256: str) -> WasmModule | None:
    """The account's module with these bytes; None if the account has none (whoever else may)."""
    return await session.scalar(
        select(WasmModule).where(WasmModule.user_id == user_id, WasmModule.sha256 == sha256)
    )


async def find_by_name(session: AsyncSession, user_id: uuid.UUID, name: str) -> WasmModule | None:
    return await session.scalar(
        select(WasmModule)
        .join(WasmModuleName, WasmModuleName.module_id == WasmModule.id)
        .where(WasmModuleName.user_id == user_id, WasmModuleName.name == name)
    )


async def list_owned(
    session: AsyncSession,
    user_id: uuid.UUID,
    *,
    limit: int,
    before: tuple[datetime, uuid.UUID] | None = None,
) -> list[WasmModule]:
    """The account's modules, newest first; `before` is the (created_at, id) of the last
    one of the previous page (a keyset cursor: stable while modules come and go)."""
    statement = select(WasmModule).where(WasmModule.user_id == user_id)
    if before is not None:
        created_at, module_id = before
        statement = statement.where(
            (WasmModule.created_at < created_at)
            | ((WasmModule.created_at == created_at) & (WasmModule.id < module_id))
        )
    statement = statement.order_by(WasmModule.created_at.desc(), WasmModule.id.desc())
    return list(await session.scalars(statement.limit(limit)))


async def names_by_module(
    session: AsyncSession, module_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Each module's names, sorted."""
    if not module_ids:
        return {}
    rows = await session.execute(
        select(WasmModuleName.module_id, WasmModuleName.name)
        .where(WasmModuleName.module_id.in_(list(module_ids)))
        .order_by(WasmModuleName.name)
    )
    names: dict[uuid.UUID, list[str]] = {}
    for module_id, name in rows:
        names.setdefault(module_id, []).append(name)
    return names


async def storage_used(session: AsyncSession, user_id: uuid.UUID) -> StorageUsed:
    row = (
        await session.execute(
            select(func.count(), func.coalesce(func.sum(WasmModule.size), 0)).where(
                WasmModule.user_id == user_id
            )
        )
    ).one()
    return StorageUsed(modules=int(row[0]), bytes=int(row[1]))


async def content(session: AsyncSession, sha256: str) -> bytes | None:
    """The stored bytes with this digest (callers resolve ownership first)."""
    return await session.scalar(select(WasmBlob.content).where(WasmBlob.sha256 == sha256))


async def set_name(
    session: AsyncSession, user_id: uuid.UUID, name: str, module_id: uuid.UUID
) -> None:
    """Point the account's `name` at `module_id`, creating or moving it."""
    insert = _insert(session)
    statement = insert(WasmModuleName).values(
        user_id=user_id, name=name, module_id=module_id, updated_at=utcnow()
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[WasmModuleName.user_id, WasmModuleName.name],
            set_={"module_id": statement.excluded.module_id, "updated_at": utcnow()},
        )
    )


async def delete_name(session: AsyncSession, user_id: uuid.UUID, name: str) -> bool:
    """Remove the account's `name` (not the module); False if it had no such name."""
    statement = delete(WasmModuleName).where(
        WasmModuleName.user_id == user_id, WasmModuleName.name == name
    )
    return rowcount(await session.execute(statement)) == 1


async def delete_owned(session: AsyncSession, user_id: uuid.UUID, sha256: str) -> bool:
    """Delete the account's module with these bytes (its names go with it), and the bytes
    themselves once no account's module refers to them. False if the account had none."""
    module_id = await session.scalar(
        select(WasmModule.id).where(WasmModule.user_id == user_id, WasmModule.sha256 == sha256)
    )
    if module_id is None:
        return False
    # Its names go by the foreign key's cascade (SQLite's enforced too: persistence.database).
    await session.execute(delete(WasmModule).where(WasmModule.id == module_id))
    await _drop_unused_blobs(session, [sha256])
    return True


async def delete_all_for_user(session: AsyncSession, user_id: uuid.UUID) -> int:
    """Delete every module of the account, and the bytes no one else stored."""
    digests = list(
        await session.scalars(select(WasmModule.sha256).where(WasmModule.user_id == user_id))
    )
    deleted = rowcount(
        await session.execute(delete(WasmModule).where(WasmModule.user_id == user_id))
    )
    await _drop_unused_blobs(session, digests)
    return deleted


async def _drop_unused_blobs(session: AsyncSession, digests: Collection[str]) -> None:
    """Delete these bytes where no account's module and no public runtime refers to them."""
    if not digests:
        return
    in_a_module = exists().where(WasmModule.sha256 == WasmBlob.sha256)
    in_a_runtime = exists().where(PublicRuntime.sha256 == WasmBlob.sha256)
    await session.execute(
        delete(WasmBlob).where(WasmBlob.sha256.in_(list(digests)), ~in_a_module, ~in_a_runtime)
    )


async def _add_blob(session: AsyncSession, sha256: str, data: bytes) -> None:
    insert = _insert(session)
    await session.execute(
        insert(WasmBlob)
        .values(sha256=sha256, size=len(data), content=data, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[WasmBlob.sha256])
    )


async def publish_runtime(
    session: AsyncSession,
    *,
    name: str,
    version: str,
    sha256: str,
    data: bytes,
    language: str,
    usage: str,
    license: str,
) -> bool:
    """Publish a runtime version (its bytes once); False if that version exists already
    (a published version never changes: publish another)."""
    await _add_blob(session, sha256, data)
    insert = _insert(session)
    result = await session.execute(
        insert(PublicRuntime)
        .values(
            name=name,
            version=version,
            sha256=sha256,
            size=len(data),
            language=language,
            usage=usage,
            license=license,
            published_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=[PublicRuntime.name, PublicRuntime.version])
    )
    return rowcount(result) == 1


async def runtime_versions(session: AsyncSession) -> set[tuple[str, str]]:
    rows = await session.execute(select(PublicRuntime.name, PublicRuntime.version))
    return {(name, version) for name, version in rows}


async def list_runtimes(session: AsyncSession) -> list[PublicRuntime]:
    """Every published version, by name, newest first within a name."""
    statement = select(PublicRuntime).order_by(
        PublicRuntime.name, PublicRuntime.published_at.desc(), PublicRuntime.version.desc()
    )
    return list(await session.scalars(statement))


async def find_runtime(
    session: AsyncSession, name: str, version: str | None = None
) -> PublicRuntime | None:
    """A runtime's given version, or (no version) its newest."""
    statement = select(PublicRuntime).where(PublicRuntime.name == name)
    if version is not None:
        statement = statement.where(PublicRuntime.version == version)
    statement = statement.order_by(PublicRuntime.published_at.desc(), PublicRuntime.version.desc())
    return await session.scalar(statement.limit(1))


async def find_public(session: AsyncSession, sha256: str) -> PublicRuntime | None:
    """A public runtime with these bytes: anyone may run them by digest."""
    return await session.scalar(
        select(PublicRuntime).where(PublicRuntime.sha256 == sha256).limit(1)
    )


async def delete_runtime(session: AsyncSession, name: str, version: str) -> bool:
    """Unpublish a runtime version; its bytes go unless something else refers to them."""
    found = await find_runtime(session, name, version)
    if found is None:
        return False
    await session.execute(
        delete(PublicRuntime).where(PublicRuntime.name == name, PublicRuntime.version == version)
    )
    await _drop_unused_blobs(session, [found.sha256])
    return True
