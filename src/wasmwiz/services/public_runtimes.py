"""Public runtimes: language interpreters as WebAssembly that every account may run by name.

The server ships some (QuickJS-ng for JavaScript, Lua; built by runtimes/build.py into the
package's `runtimes/` data, with a manifest) and installs them into the database at start;
an administrator publishes more with `wasmwiz runtimes publish`. A runtime is a name and a
version (`lua@5.4.8`; the name alone is its newest version) and a module whose digest any
account may run. `GET /api/v1/runtimes` lists them and how a program reaches each one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz import errors
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import PublicRuntime
from wasmwiz.persistence.repositories import wasm_modules as repository
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox import ModuleRefused, Sandbox
from wasmwiz.services.stored_modules import MODULE_NAME, RUNTIME_VERSION

logger = logging.getLogger(__name__)

_MANIFEST = "runtimes.json"


@dataclass(frozen=True, slots=True)
class BundledRuntime:
    """A runtime the package ships, as its manifest describes it."""

    name: str
    version: str
    language: str
    usage: str
    license: str
    file: str
    sha256: str

    def read(self) -> bytes:
        data = (resources.files("wasmwiz") / "runtimes" / self.file).read_bytes()
        if hashlib.sha256(data).hexdigest() != self.sha256:
            raise RuntimeError(f"{self.file} is not what runtimes.json says it is")
        return data


def bundled_runtimes() -> list[BundledRuntime]:
    """The runtimes in the package's manifest; none if the package ships no manifest."""
    manifest = resources.files("wasmwiz") / "runtimes" / _MANIFEST
    if not manifest.is_file():
        return []
    entries: list[dict[str, Any]] = json.loads(manifest.read_text())["runtimes"]
    return [
        BundledRuntime(
            name=entry["name"],
            version=entry["version"],
            language=entry["language"],
            usage=entry["usage"],
            license=entry["license"],
            file=entry["file"],
            sha256=entry["sha256"],
        )
        for entry in entries
    ]


@dataclass(frozen=True, slots=True)
class RuntimeView:
    name: str
    version: str
    sha256: str
    size: int
    language: str
    usage: str
    license: str
    published_at: datetime
    latest: bool  # what `module=NAME` runs

    @property
    def id(self) -> str:
        return f"sha256:{self.sha256}"


def check_runtime(name: str, version: str) -> None:
    if not MODULE_NAME.fullmatch(name) or not RUNTIME_VERSION.fullmatch(version):
        raise errors.InvalidRequest(
            "A runtime needs a name (1 to 64 of a-z 0-9 . _ -) and a version (1 to 32 of "
            "A-Z a-z 0-9 . _ + -).",
            code=ProblemCode.INVALID_MODULE_NAME,
        )


async def install_bundled(database: Database) -> list[str]:
    """Publish every shipped runtime version the database lacks (at start; replicas
    starting together insert each once). Returns what it installed."""
    bundled = bundled_runtimes()
    if not bundled:
        return []
    installed = []
    async with database.writer() as session:
        present = await repository.runtime_versions(session)
        for runtime in bundled:
            if (runtime.name, runtime.version) in present:
                continue
            if await repository.publish_runtime(
                session,
                name=runtime.name,
                version=runtime.version,
                sha256=runtime.sha256,
                data=runtime.read(),
                language=runtime.language,
                usage=runtime.usage,
                license=runtime.license,
            ):
                installed.append(f"{runtime.name}@{runtime.version}")
        await session.commit()
    if installed:
        logger.info("installed the bundled runtimes %s", ", ".join(installed))
    return installed


async def publish(
    session: AsyncSession,
    sandbox: Sandbox,
    *,
    name: str,
    version: str,
    data: bytes,
    language: str,
    usage: str,
    license: str,
) -> RuntimeView:
    """Validate and compile the module (as an upload is), then publish it."""
    check_runtime(name, version)
    try:
        compiled = await sandbox.prepare_async(data)
    except ModuleRefused as exc:
        raise errors.ModuleRejected(exc.message, code=exc.code) from None
    if not await repository.publish_runtime(
        session,
        name=name,
        version=version,
        sha256=compiled.sha256,
        data=data,
        language=language,
        usage=usage,
        license=license,
    ):
        raise errors.Conflict(
            f"{name}@{version} is published already; publish a new version.",
            code=ProblemCode.CONFLICT,
        )
    # Just published: the newest of its name unless an older release carries a later time.
    published = await repository.find_runtime(session, name, version)
    newest = await repository.find_runtime(session, name)
    assert published is not None
    assert newest is not None
    return _view(published, latest=newest.version == published.version)


async def list_runtimes(session: AsyncSession) -> list[RuntimeView]:
    """Every published version, newest first within a name; the first is `latest`."""
    views, seen = [], set()
    for runtime in await repository.list_runtimes(session):
        views.append(_view(runtime, latest=runtime.name not in seen))
        seen.add(runtime.name)
    return views


async def unpublish(session: AsyncSession, name: str, version: str) -> None:
    if not await repository.delete_runtime(session, name, version):
        raise errors.NotFound(f"No runtime {name}@{version}.", code=ProblemCode.MODULE_NOT_FOUND)


def _view(runtime: PublicRuntime, *, latest: bool) -> RuntimeView:
    return RuntimeView(
        name=runtime.name,
        version=runtime.version,
        sha256=runtime.sha256,
        size=runtime.size,
        language=runtime.language,
        usage=runtime.usage,
        license=runtime.license,
        published_at=runtime.published_at,
        latest=latest,
    )
