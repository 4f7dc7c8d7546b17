"""Run the packaged Alembic migrations against a database URL, from sync or async code."""

from __future__ import annotations

import asyncio
from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from wasmwiz.persistence.database import create_engine

__all__ = [
    "alembic_config",
    "current",
    "current_async",
    "downgrade",
    "downgrade_async",
    "head",
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


def head() -> str:
    """The newest revision shipped with this version of WasmWiz."""
    revision = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert revision is not None, "the packaged migrations have no head"
    return revision


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
        async with engine.connect() as connection:
            return await connection.run_sync(_current_revision)
    finally:
        await engine.dispose()


def _current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
