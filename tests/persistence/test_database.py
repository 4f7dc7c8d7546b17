"""The engine and session factory: URLs, SQLite connection settings, ping, transactions."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from tests.persistence.factories import make_user
from wasmwiz.persistence import Database, PoolOptions, normalize_url
from wasmwiz.persistence.database import _server_settings, create_engine
from wasmwiz.persistence.repositories import users


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql://u:p@db:5432/ww", "postgresql+asyncpg://u:p@db:5432/ww"),
        ("postgres://u@db/ww", "postgresql+asyncpg://u@db/ww"),
        ("postgresql+asyncpg://u@db/ww", "postgresql+asyncpg://u@db/ww"),
        ("sqlite:///var/ww.db", "sqlite+aiosqlite:///var/ww.db"),
        ("sqlite:////abs/ww.db", "sqlite+aiosqlite:////abs/ww.db"),
        ("sqlite+aiosqlite:///ww.db", "sqlite+aiosqlite:///ww.db"),
    ],
)
def test_normalize_url_picks_the_async_driver(given: str, expected: str) -> None:
    assert normalize_url(given).render_as_string(hide_password=False) == expected


def test_postgres_options_become_server_settings() -> None:
    options = "-csearch_path=s1 -c statement_timeout=5000 --lock-timeout=10"
    assert _server_settings(options) == {
        "search_path": "s1",
        "statement_timeout": "5000",
        "lock_timeout": "10",
    }
    engine = create_engine(f"postgresql://u@db/ww?options={quote(options)}")
    assert engine.url.query == {}


@pytest.mark.parametrize("options", ["search_path=s1", "-c", "-cnovalue"])
def test_malformed_postgres_options_are_rejected(options: str) -> None:
    with pytest.raises(ValueError, match="options"):
        create_engine(f"postgresql://u@db/ww?options={options}")


def test_pool_options_apply_to_postgresql_only(tmp_path: Path) -> None:
    pg = Database("postgresql://u@db/ww", pool=PoolOptions(size=3, max_overflow=1))
    sqlite = Database(f"sqlite:///{tmp_path / 'x.db'}", pool=PoolOptions(size=3))
    assert pg.engine.pool.size() == 3  # type: ignore[attr-defined]
    assert not pg.is_sqlite
    assert sqlite.is_sqlite
    assert "u@db" in repr(pg)


@pytest.mark.anyio
async def test_ping(database: Database) -> None:
    await database.ping()


@pytest.mark.anyio
async def test_ping_raises_when_the_database_is_unreachable() -> None:
    # Nothing listens on port 1. (A failing aiosqlite connect is not used here: it leaves
    # its worker thread posting to the event loop after the test.)
    database = Database("postgresql://nobody@127.0.0.1:1/none")
    try:
        with pytest.raises(OSError):
            await database.ping()
    finally:
        await database.dispose()


@pytest.mark.anyio
async def test_connection_settings(database: Database) -> None:
    async with database.engine.connect() as connection:
        if database.is_sqlite:
            assert await connection.scalar(text("PRAGMA journal_mode")) == "wal"
            assert await connection.scalar(text("PRAGMA foreign_keys")) == 1
            assert await connection.scalar(text("PRAGMA busy_timeout")) == 5000
        else:
            # The schema carried in the URL's libpq options is the search path.
            schema = await connection.scalar(text("SELECT current_schema()"))
            assert str(schema).startswith("wasmwiz_test_")


@pytest.mark.anyio
async def test_foreign_keys_are_enforced(database: Database) -> None:
    async with database.session() as session:
        users.create(session, email="orphan@example.com", tier_id=999)
        with pytest.raises(IntegrityError):
            await session.flush()


@pytest.mark.anyio
async def test_objects_stay_readable_after_commit(database: Database) -> None:
    async with database.session() as session:
        user = await make_user(session, email="kept@example.com")
        await session.commit()
    assert user.email == "kept@example.com"


@pytest.mark.anyio
async def test_savepoints_roll_back_inside_the_transaction(database: Database) -> None:
    # On SQLite this needs SQLAlchemy, not the sqlite3 driver, to emit BEGIN.
    async with database.session() as session:
        await make_user(session, email="outer@example.com")
        async with session.begin_nested() as savepoint:
            await make_user(session, email="inner@example.com")
            await savepoint.rollback()
        await session.commit()
    async with database.session() as session:
        emails = {user.email for user in await users.list_users(session)}
    assert emails == {"outer@example.com"}


@pytest.mark.anyio
async def test_rollback_discards_the_whole_transaction(database: Database) -> None:
    async with database.session() as session:
        await make_user(session, email="gone@example.com")
        await session.rollback()
    async with database.session() as session:
        assert await users.get_by_email(session, "gone@example.com") is None
