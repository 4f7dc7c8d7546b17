"""Stored modules: upload once, run by id or name; an account sees only its own.

A module is stored by the SHA-256 of its bytes (`sha256:<hex>` is its id), its bytes once
however many accounts store them. Uploading compiles it (in a compile worker, charged to
the account's compile budget, as any upload to execute is) and records what it imports
and exports. An account reaches only its own modules: another account's digest is
`module_not_found`, exactly as a digest no one stored. Runs by reference take the
compiled module from the sandbox's caches; its bytes are read from the database only
when no cache holds it.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz import errors
from wasmwiz.observability.metrics import Metrics
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import WasmModule
from wasmwiz.persistence.repositories import wasm_modules as repository
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox import ModuleExport, ModuleImport, Sandbox
from wasmwiz.services.compile_budgets import CompileBudgets
from wasmwiz.services.page_cursor import decode_cursor, encode_cursor
from wasmwiz.services.principals import Principal
from wasmwiz.services.rate_limits import AdmissionGate
from wasmwiz.services.sandbox_refusals import sandbox_refusals

# Unanchored: used with fullmatch, and joined into the execute form's pattern.
MODULE_ID = re.compile(r"sha256:[0-9a-f]{64}")
MODULE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
# A public runtime's version: `module=lua@5.4.8` (the name alone runs the newest).
RUNTIME_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,31}")
RUNTIME_REFERENCE = re.compile(f"({MODULE_NAME.pattern})@({RUNTIME_VERSION.pattern})")
MAX_PAGE_SIZE = 100
_LOAD_TIMEOUT_SECONDS = 60


@dataclass(frozen=True, slots=True)
class ModuleUpload:
    wasm: bytes | memoryview
    name: str | None = None


@dataclass(frozen=True, slots=True)
class StoredModuleView:
    sha256: str
    size: int
    created_at: datetime
    names: tuple[str, ...]
    imports: tuple[ModuleImport, ...]
    exports: tuple[ModuleExport, ...]
    is_command: bool

    @property
    def id(self) -> str:
        return f"sha256:{self.sha256}"


@dataclass(frozen=True, slots=True)
class StoredUpload:
    module: StoredModuleView
    created: bool  # False: the account had stored these bytes before
    headers: dict[str, str]  # the admission's budgets


@dataclass(frozen=True, slots=True)
class ModulePage:
    modules: list[StoredModuleView]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class ResolvedModule:
    sha256: str
    size: int


def _not_found(reference: str) -> errors.NotFound:
    return errors.NotFound(
        f"No stored module {reference!r} in this account.", code=ProblemCode.MODULE_NOT_FOUND
    )


def check_name(name: str) -> str:
    if not MODULE_NAME.fullmatch(name):
        raise errors.InvalidRequest(
            "A module name needs 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit.",
            code=ProblemCode.INVALID_MODULE_NAME,
        )
    return name


def _view(module: WasmModule, names: list[str]) -> StoredModuleView:
    return StoredModuleView(
        sha256=module.sha256,
        size=module.size,
        created_at=module.created_at,
        names=tuple(names),
        imports=tuple(ModuleImport(**item) for item in json.loads(module.imports)),
        exports=tuple(ModuleExport(**item) for item in json.loads(module.exports)),
        is_command=module.is_command,
    )


class _ResolvedCache:
    """What an account's references ran as, for `seconds`: a run by reference then costs
    no query. An account's own changes here drop its entries at once; another replica's
    (a deleted module, a moved name) are seen within `seconds`, as a revoked key is."""

    def __init__(self, seconds: float, *, max_accounts: int = 10_000) -> None:
        self._seconds = seconds
        self._max_accounts = max_accounts
        self._entries: dict[uuid.UUID, dict[str, tuple[float, ResolvedModule]]] = {}

    def get(self, user_id: uuid.UUID, ref: str) -> ResolvedModule | None:
        entry = self._entries.get(user_id, {}).get(ref)
        if entry is None or entry[0] <= time.monotonic():
            return None
        return entry[1]

    def put(self, user_id: uuid.UUID, ref: str, resolved: ResolvedModule) -> None:
        if self._seconds <= 0:
            return
        if user_id not in self._entries and len(self._entries) >= self._max_accounts:
            self._entries.pop(next(iter(self._entries)))  # the oldest account's
        self._entries.setdefault(user_id, {})[ref] = (time.monotonic() + self._seconds, resolved)

    def forget(self, user_id: uuid.UUID) -> None:
        self._entries.pop(user_id, None)


class StoredModules:
    """The stored-module use cases; each takes the request's session and flushes at most."""

    def __init__(
        self,
        database: Database,
        sandbox: Sandbox,
        gate: AdmissionGate,
        metrics: Metrics,
        *,
        compile_budgets: CompileBudgets | None = None,
        cache_seconds: float = 5.0,
    ) -> None:
        self._database = database
        self._sandbox = sandbox
        self._gate = gate
        self._metrics = metrics
        self._compile_budgets = compile_budgets
        self._resolved = _ResolvedCache(cache_seconds)

    async def upload(
        self,
        session: AsyncSession,
        principal: Principal,
        read: Callable[[], Awaitable[ModuleUpload]],
    ) -> StoredUpload:
        """Admit (an upload is a request against the account's rate, quota and concurrent
        runs, as an execution is), then read, compile and store the module."""
        async with self._gate.admit(principal) as admission:
            try:
                upload = await read()
            except errors.WasmWizError as exc:
                exc.headers = {**admission.headers, **exc.headers}
                raise
            name = check_name(upload.name) if upload.name is not None else None
            compile_account = (
                self._compile_budgets.account_for(principal)
                if self._compile_budgets is not None
                else None
            )
            with sandbox_refusals(principal, admission.headers, self._metrics):
                compiled = await self._sandbox.prepare_async(
                    upload.wasm, account=principal.rate_limit_key, compile_account=compile_account
                )
            interface = Sandbox.describe(compiled)
            existing = await repository.find_owned(session, principal.user_id, compiled.sha256)
            if existing is None:
                await self._check_quota(session, principal, len(upload.wasm), admission.headers)
            stored = await repository.add(
                session,
                user_id=principal.user_id,
                sha256=compiled.sha256,
                data=bytes(upload.wasm),
                imports=json.dumps(
                    [
                        {"module": i.module, "name": i.name, "kind": i.kind}
                        for i in interface.imports
                    ]
                ),
                exports=json.dumps([{"name": e.name, "kind": e.kind} for e in interface.exports]),
                is_command=interface.is_command,
            )
            if name is not None:
                self._resolved.forget(principal.user_id)
                await repository.set_name(session, principal.user_id, name, stored.id)
            names = await repository.names_by_module(session, [stored.id])
            return StoredUpload(
                _view(stored, names.get(stored.id, [])), existing is None, admission.headers
            )

    async def _check_quota(
        self, session: AsyncSession, principal: Principal, size: int, headers: dict[str, str]
    ) -> None:
        used = await repository.storage_used(session, principal.user_id)
        tier = principal.tier
        if used.modules + 1 > tier.max_stored_modules:
            message = (
                f"This account keeps {used.modules} stored modules, its tier's most "
                f"({tier.max_stored_modules}); delete one first."
            )
        elif used.bytes + size > tier.max_stored_module_bytes:
            message = (
                f"This module ({size} bytes) would take the account's stored modules to "
                f"{used.bytes + size} bytes, over its tier's {tier.max_stored_module_bytes}; "
                "delete some first."
            )
        else:
            return
        raise errors.PermissionDenied(
            message, code=ProblemCode.STORAGE_QUOTA_EXCEEDED, headers=headers
        )

    async def list(
        self, session: AsyncSession, principal: Principal, *, limit: int, cursor: str | None
    ) -> ModulePage:
        before = decode_cursor(cursor) if cursor else None
        rows = await repository.list_owned(
            session, principal.user_id, limit=limit + 1, before=before
        )
        page, more = rows[:limit], len(rows) > limit
        names = await repository.names_by_module(session, [row.id for row in page])
        return ModulePage(
            [_view(row, names.get(row.id, [])) for row in page],
            encode_cursor(page[-1].created_at, page[-1].id) if more else None,
        )

    async def _find(self, session: AsyncSession, principal: Principal, ref: str) -> WasmModule:
        if MODULE_ID.fullmatch(ref):
            found = await repository.find_owned(
                session, principal.user_id, ref.removeprefix("sha256:")
            )
        elif MODULE_NAME.fullmatch(ref):
            found = await repository.find_by_name(session, principal.user_id, ref)
        else:
            found = None
        if found is None:
            raise _not_found(ref)
        return found

    async def get(self, session: AsyncSession, principal: Principal, ref: str) -> StoredModuleView:
        found = await self._find(session, principal, ref)
        names = await repository.names_by_module(session, [found.id])
        return _view(found, names.get(found.id, []))

    async def delete(self, session: AsyncSession, principal: Principal, ref: str) -> None:
        self._resolved.forget(principal.user_id)
        found = await self._find(session, principal, ref)
        await repository.delete_owned(session, principal.user_id, found.sha256)

    async def set_name(
        self, session: AsyncSession, principal: Principal, name: str, ref: str
    ) -> StoredModuleView:
        check_name(name)
        self._resolved.forget(principal.user_id)
        found = await self._find(session, principal, ref)
        await repository.set_name(session, principal.user_id, name, found.id)
        return await self.get(session, principal, name)

    async def delete_name(self, session: AsyncSession, principal: Principal, name: str) -> None:
        self._resolved.forget(principal.user_id)
        if not await repository.delete_name(session, principal.user_id, check_name(name)):
            raise _not_found(name)

    async def resolve(self, principal: Principal, ref: str) -> ResolvedModule:
        """What a run of `ref` runs: the account's module by id or name, else a public
        runtime by its id, its name (the newest) or name@version. Cached a few seconds."""
        resolved = self._resolved.get(principal.user_id, ref)
        if resolved is None:
            resolved = await self._resolve(principal, ref)
            self._resolved.put(principal.user_id, ref, resolved)
        return resolved

    async def _resolve(self, principal: Principal, ref: str) -> ResolvedModule:
        async with self._database.session() as session:
            if (pinned := RUNTIME_REFERENCE.fullmatch(ref)) is not None:
                runtime = await repository.find_runtime(session, pinned[1], pinned[2])
                if runtime is None:
                    raise _not_found(ref)
                return ResolvedModule(runtime.sha256, runtime.size)
            try:
                found = await self._find(session, principal, ref)
                return ResolvedModule(found.sha256, found.size)
            except errors.NotFound:
                public = (
                    await repository.find_public(session, ref.removeprefix("sha256:"))
                    if MODULE_ID.fullmatch(ref)
                    else await repository.find_runtime(session, ref)
                )
                if public is None:
                    raise
                return ResolvedModule(public.sha256, public.size)

    def loader(self, sha256: str) -> Callable[[], bytes]:
        """Reads the module's bytes, blocking: for the sandbox's worker thread, which calls
        it only when no cache holds the compiled module. The query runs on this loop."""
        loop = asyncio.get_running_loop()

        def load() -> bytes:
            future = asyncio.run_coroutine_threadsafe(self._content(sha256), loop)
            return future.result(timeout=_LOAD_TIMEOUT_SECONDS)

        return load

    async def _content(self, sha256: str) -> bytes:
        async with self._database.session() as session:
            content = await repository.content(session, sha256)
        if content is None:  # deleted since it was resolved
            raise _not_found(f"sha256:{sha256}")
        return content
