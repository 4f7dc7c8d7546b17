"""Run the packaged Alembic migrations against a database URL, from sync or async code."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from importlib.resources import files
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from wasmwiz.persistence.database import Database, create_engine

__all__ = [
    "alembic_config",
    "current",
    "current_async",
    "database_schema_problem",
    "downgrade",
    "downgrade_async",
    "head",
    "schema_problem",
    "schema_problem_async",
    "upgrade",
    "upgrade_async",
]


def alembic_config(url: str) -> Config:
    """An Alembic `Config` for the packaged migrations and `url`, without an `alembic.ini`.

    `env.py` reads the URL from `config.attributes["url"]`; any URL `Database` accepts works.
    """
    config = Config()
    # Installed from a wheel the package is a directory on disk, which Alembic requires.
    config.set_main_option("script_location", str(files("wasmwiz.migrations")))
    config.attributes["url"] = url
    return config


@functools.cache
def head() -> str:
    """The newest revision shipped with this version of WasmWiz.

    Read from the packaged scripts once per process: they do not change while it runs.
    """
    revision = _scripts().get_current_head()
    assert revision is not None, "the packaged migrations have no head"
    return revision


@functools.cache
def _revisions_behind_head() -> frozenset[str]:
    """Every packaged revision older than the head (read once: readiness asks every
    HEALTH_CACHE_SECONDS, and reading the scripts is file I/O on the event loop)."""
    return frozenset(script.revision for script in _scripts().walk_revisions()) - {head()}


def _ensure_no_running_loop(name: str) -> None:
    # env.py drives the async engine with asyncio.run(), which cannot nest in a running loop.
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(f"{name}() called inside a running event loop: use {name}_async()")


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the schema at `url` to `revision`. Call from code without a running loop."""
    _ensure_no_running_loop("upgrade")
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Downgrade the schema at `url` to `revision` (`"base"` drops everything)."""
    _ensure_no_running_loop("downgrade")
    command.downgrade(alembic_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at `url` is at, or None if it has never been migrated."""
    _ensure_no_running_loop("current")
    return asyncio.run(current_async(url))


async def upgrade_async(url: str, revision: str = "head") -> None:
    """`upgrade` for code inside a running event loop: it runs on a worker thread."""
    await asyncio.to_thread(upgrade, url, revision)


async def downgrade_async(url: str, revision: str) -> None:
    """`downgrade` for code inside a running event loop: it runs on a worker thread."""
    await asyncio.to_thread(downgrade, url, revision)


async def current_async(url: str) -> str | None:
    engine = create_engine(url, pooled=False)
    try:
        return await _engine_revision(engine)
    finally:
        await engine.dispose()


async def _engine_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as connection:
        return await connection.run_sync(_current_revision)


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


UPGRADE_HINT = "run `wasmwiz db upgrade`"


def sqlite_path(url: str | URL) -> Path | None:
    """The file a SQLite URL names, or None for another database (or an in-memory one)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def schema_problem(url: str) -> str | None:
    """`schema_problem_async` for code without a running loop."""
    _ensure_no_running_loop("schema_problem")
    return asyncio.run(schema_problem_async(url))


async def schema_problem_async(url: str) -> str | None:
    """None if the schema at `url` can serve this release, or one line saying what to do.

    A schema *behind* this release's head (never migrated, or an older revision) cannot:
    the tables or columns the code uses are missing. One the code does not know is newer,
    from the next release, and is fine: migrations stay compatible for one release
    (docs/releasing.md), so an older image must keep working on it during a rollback.
    A SQLite file that does not exist is reported without being created.
    """
    return await _schema_problem(sqlite_path(url), lambda: current_async(url))


async def database_schema_problem(database: Database) -> str | None:
    """`schema_problem_async` through `database`'s own pool, for a check that repeats
    (readiness): no engine is built for it."""
    return await _schema_problem(
        sqlite_path(database.url), lambda: _engine_revision(database.engine)
    )


async def _schema_problem(
    path: Path | None, revision_of: Callable[[], Awaitable[str | None]]
) -> str | None:
    if (missing := _missing_file(path)) is not None:
        return missing
    revision = await revision_of()
    where = f"the database {path}" if path is not None else "the database"
    if revision is None:
        return f"{where} has no schema: {UPGRADE_HINT}"
    if revision in _revisions_behind_head():
        return f"{where} is at revision {revision}, this release needs {head()}: {UPGRADE_HINT}"
    return None


def _missing_file(path: Path | None) -> str | None:
    """A SQLite file that is not there, named without creating it (a stat: no thread)."""
    if path is not None and not path.exists():
        return f"no database at {path}: {UPGRADE_HINT} to create it"
    return None


def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(""))
