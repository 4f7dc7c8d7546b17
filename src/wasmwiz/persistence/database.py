"""The async engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool

__all__ = ["Database", "PoolOptions", "create_engine", "normalize_url"]

_DRIVERS = {
    "postgres": "postgresql+asyncpg",
    "postgresql": "postgresql+asyncpg",
    "sqlite": "sqlite+aiosqlite",
}
_SQLITE_BUSY_TIMEOUT_MS = 5000
# Execution option marking a unit of work that will write (see Database.writer).
_WRITER_OPTION = "wasmwiz_writer"


def normalize_url(url: str | URL) -> URL:
    """Return `url` with the async driver filled in: `postgresql://` -> `postgresql+asyncpg://`."""
    parsed = make_url(url)
    driver = _DRIVERS.get(parsed.drivername)
    return parsed.set(drivername=driver) if driver else parsed


def _server_settings(options: str) -> dict[str, str]:
    """Parse a libpq `options` value (`-c key=value ...` / `--key=value`) into settings."""
    settings: dict[str, str] = {}
    words = iter(options.split())
    for word in words:
        if word == "-c":
            setting = next(words, "")
        elif word.startswith("-c"):
            setting = word[2:]
        elif word.startswith("--"):
            setting = word[2:].replace("-", "_")
        else:
            setting = ""
        key, sep, value = setting.partition("=")
        if not (key and sep):
            raise ValueError(f"unsupported PostgreSQL options {options!r}: expected -c key=value")
        settings[key] = value
    return settings


@dataclass(frozen=True, slots=True)
class PoolOptions:
    """The connection pool's settings (the service takes them from DB_POOL_*).

    Size, overflow, timeout and recycling apply to PostgreSQL only; pre-ping to both.
    """

    size: int = 10
    max_overflow: int = 10
    timeout: float = 30.0
    recycle: int = 1800
    pre_ping: bool = False


def create_engine(
    url: str | URL,
    *,
    echo: bool = False,
    pool: PoolOptions = PoolOptions(),
    pooled: bool = True,
) -> AsyncEngine:
    """Create an async engine for `url`; see `Database` for the URL forms accepted.

    `pooled=False` opens a connection per checkout (migrations, one-shot commands).
    """
    parsed = normalize_url(url)
    # pre-ping tests each connection as it leaves the pool, so one the server dropped
    # (a restart, a failover) is replaced instead of failing a request.
    kwargs: dict[str, Any] = {"echo": echo, "pool_pre_ping": pool.pre_ping}
    if not pooled:
        kwargs["poolclass"] = NullPool

    if parsed.get_backend_name() == "postgresql":
        # asyncpg takes no `options` argument: the libpq form (which psql also accepts)
        # is translated to server settings, e.g. a per-test schema on the search_path.
        options = parsed.query.get("options")
        if options is not None:
            if not isinstance(options, str):
                raise ValueError("the PostgreSQL `options` query parameter is given twice")
            parsed = parsed.difference_update_query(["options"])
            kwargs["connect_args"] = {"server_settings": _server_settings(options)}
        if pooled:
            kwargs |= {
                "pool_size": pool.size,
                "max_overflow": pool.max_overflow,
                "pool_timeout": pool.timeout,
                "pool_recycle": pool.recycle,
            }
        return _create_async_engine(parsed, **kwargs)

    engine = _create_async_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # Take BEGIN away from the sqlite3 driver, which skips it before SELECT, DDL and
        # SAVEPOINT; SQLAlchemy emits it below so transactions and savepoints are real.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A writer takes SQLite's write lock at BEGIN, waiting its turn under busy_timeout.
        # A deferred transaction that reads and then writes holds a snapshot that another
        # writer may overtake meanwhile; SQLite then refuses the upgrade at once with
        # "database is locked", which busy_timeout does not retry.
        if connection.get_execution_options().get(_WRITER_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


class Database:
    """An engine and its session factory, built from a database URL.

    Accepted URLs: `sqlite:///path` (-> aiosqlite), `postgresql://` or `postgres://`
    (-> asyncpg), or either with its async driver spelt out. A PostgreSQL URL may carry
    libpq `options`, e.g. `?options=-csearch_path%3Dmy_schema`, applied as server settings
    on every connection. Pool options apply to PostgreSQL only.
    """

    def __init__(
        self, url: str | URL, *, echo: bool = False, pool: PoolOptions = PoolOptions()
    ) -> None:
        self.url = normalize_url(url)
        self.engine = create_engine(url, echo=echo, pool=pool)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writer_sessionmaker = async_sessionmaker(
            self.engine.execution_options(**{_WRITER_OPTION: True}), expire_on_commit=False
        )

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def session(self) -> AsyncSession:
        """A new session for reading; use as `async with database.session() as session:`.

        A unit of work that writes uses `writer()` instead (tests/persistence/test_writers.py
        checks that every session in src/ that commits is one).
        """
        return self.sessionmaker()

    def writer(self) -> AsyncSession:
        """A new session for a unit of work that writes and commits.

        On SQLite its transactions begin with `BEGIN IMMEDIATE`, so concurrent writers
        queue for the lock instead of failing; on PostgreSQL it is an ordinary session.
        Do slow work (password hashing) before opening it: the lock is held until commit.
        """
        return self._writer_sessionmaker()

    async def ping(self) -> None:
        """Run `SELECT 1`; raises if the database cannot be reached."""
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()

    def __repr__(self) -> str:
        return f"Database({self.url.render_as_string(hide_password=True)!r})"
