"""Which database errors mean "the database is unavailable now; retry", and which are bugs.

A 503 `database_unavailable` tells a client its request was fine and a retry may work,
so only failures of reaching or holding the database count:

- the pool gave no connection in time (`sqlalchemy.exc.TimeoutError`, DB_POOL_TIMEOUT);
- SQLAlchemy saw the connection drop (`DBAPIError.connection_invalidated`);
- PostgreSQL answered with a connection-exception, shutdown or out-of-resources SQLSTATE
  (class 08, 57P01-57P03, class 53: too many connections, disk full, out of memory);
- SQLite was busy, locked, could not open or read or write its file (`SQLITE_BUSY`,
  `SQLITE_LOCKED`, `SQLITE_IOERR`, `SQLITE_FULL`, `SQLITE_CANTOPEN`, `SQLITE_READONLY`,
  `SQLITE_PROTOCOL`);
- an OSError (refused, reset, timed out, unresolvable) raised while SQLAlchemy or the
  driver was connecting: asyncpg lets these through unwrapped.

Everything else (`no such table`, a constraint, a syntax error) stays a 500: it is our
bug or a missing migration, and retrying will not help.
"""

from __future__ import annotations

import sqlite3
from types import TracebackType

from sqlalchemy import exc as sa_exc

DATABASE_RETRY_AFTER_SECONDS = 5

_SQLITE_UNAVAILABLE = {
    sqlite3.SQLITE_BUSY,
    sqlite3.SQLITE_LOCKED,
    sqlite3.SQLITE_IOERR,
    sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_CANTOPEN,
    sqlite3.SQLITE_READONLY,
    sqlite3.SQLITE_PROTOCOL,
}
_POSTGRES_UNAVAILABLE_STATES = {"57P01", "57P02", "57P03"}
_POSTGRES_UNAVAILABLE_CLASSES = {"08", "53"}
_DATABASE_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.")


def is_database_unavailable(error: BaseException) -> bool:
    if isinstance(error, sa_exc.TimeoutError):
        return True
    if isinstance(error, sa_exc.DBAPIError):
        return error.connection_invalidated or _driver_says_unavailable(error.orig)
    if isinstance(error, OSError):
        return _raised_in(error.__traceback__, _DATABASE_MODULES)
    return False


def _driver_says_unavailable(orig: BaseException | None) -> bool:
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        # Extended codes (SQLITE_IOERR_READ...) carry the primary code in the low byte.
        return code is not None and code & 0xFF in _SQLITE_UNAVAILABLE
    state = getattr(orig, "sqlstate", None)
    if isinstance(state, str):
        return state in _POSTGRES_UNAVAILABLE_STATES or state[:2] in _POSTGRES_UNAVAILABLE_CLASSES
    return False


def _raised_in(traceback: TracebackType | None, prefixes: tuple[str, ...]) -> bool:
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if isinstance(module, str) and module.startswith(prefixes):
            return True
        traceback = traceback.tb_next
    return False
