"""Alembic environment: runs migrations over the async engine for the URL in the config."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

from wasmwiz.persistence.database import create_engine
from wasmwiz.persistence.models import Base


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place: batch mode copies the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


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
