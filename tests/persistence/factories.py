"""Builders for the rows the persistence tests need."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from wasmwiz.persistence import ApiKey, User
from wasmwiz.persistence.repositories import api_keys, tiers, usage_logs, users


async def make_user(session: AsyncSession, *, email: str | None = None, tier: str = "free") -> User:
    found = await tiers.get_by_name(session, tier)
    assert found is not None
    user = users.create(
        session, email=email or f"user-{secrets.token_hex(4)}@example.com", tier_id=found.id
    )
    await session.flush()
    return user


async def make_key(
    session: AsyncSession, user: User, *, name: str = "key", **fields: Any
) -> ApiKey:
    key_hash = hashlib.sha256(secrets.token_bytes(16)).hexdigest()
    api_key = api_keys.create(
        session,
        user_id=user.id,
        name=name,
        prefix=f"ww_{key_hash[:8]}",
        key_hash=key_hash,
        **fields,
    )
    await session.flush()
    return api_key


def usage_record(user_id: uuid.UUID, **overrides: Any) -> usage_logs.UsageRecord:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "user_id": user_id,
        "api_key_id": None,
        "created_at": datetime.now(UTC),
        "duration_ms": 1.5,
        "status": "success",
        "exit_code": 0,
        "error": None,
        "module_size": 120,
        "module_sha256": "ab" * 32,
        "input_size": 3,
        "output_size": 5,
        "stderr_size": 0,
        "memory_peak_bytes": 65_536,
        "fuel_consumed": 10_000,
    }
    return usage_logs.UsageRecord(**(fields | overrides))


@contextmanager
def count_queries(engine: AsyncEngine) -> Iterator[list[str]]:
    """Collect the SQL statements `engine` sends while the block runs, BEGIN aside."""
    statements: list[str] = []

    def record(*args: Any) -> None:
        # On SQLite, SQLAlchemy itself sends BEGIN (see wasmwiz.persistence.database).
        if args[2] != "BEGIN":
            statements.append(args[2])

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
