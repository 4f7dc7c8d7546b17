"""Alembic environment: runs migrations over the async engine for the URL in the config."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from wasmwiz.persistence.database import create_engine
from wasmwiz.persistence.models import Base


def _run_migrations(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch mode copies a table and drops the old one, and SQLite refuses to drop a
        # table other rows refer to while it enforces foreign keys (subscription_tiers,
        # once an account exists). Off for the migration, then checked before it commits.
        _stop_enforcing_foreign_keys(connection)
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place: batch mode copies the table instead.
        render_as_batch=sqlite,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
        if sqlite:
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise RuntimeError(f"the migration left rows that refer to none: {broken[:10]}")


def _stop_enforcing_foreign_keys(connection: Connection) -> None:
    """On the driver's connection itself: SQLite ignores the pragma inside a transaction,
    and SQLAlchemy would open one before its first statement. The connection is the
    migration's own, disposed of after it."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=OFF")
    finally:
        cursor.close()


async def _run_async_migrations(url: str) -> None:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (--sql) migrations are not supported")
    url = context.config.attributes.get("url")
    if not isinstance(url, str):
        raise RuntimeError("run migrations through wasmwiz.persistence.migrate (no URL given)")
    asyncio.run(_run_async_migrations(url))


_main()
