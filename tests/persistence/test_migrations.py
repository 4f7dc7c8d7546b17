"""The packaged Alembic migrations: up, down and up again, and in step with the models."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text
from sqlalchemy.pool import QueuePool

from tests.fixtures.database import run_outside_loop
from tests.persistence.factories import make_user, usage_record
from wasmwiz.persistence import Base, Database
from wasmwiz.persistence.database import create_engine
from wasmwiz.persistence.migrate import (
    alembic_config,
    current,
    current_async,
    database_schema_problem,
    downgrade,
    downgrade_async,
    head,
    schema_problem_async,
    upgrade,
    upgrade_async,
)
from wasmwiz.persistence.repositories import usage_logs

T = TypeVar("T")

TABLES = {
    "subscription_tiers",
    "users",
    "api_keys",
    "usage_logs",
    "web_sessions",
    "signup_invites",
    "wasm_blobs",
    "wasm_modules",
    "wasm_module_names",
    "public_runtimes",
    "jobs",
    "job_payloads",
    "webhook_endpoints",
    "webhook_events",
    "webhook_deliveries",
    "webhook_callback_secrets",
}
SEEDED_TIERS = [("free", 10, 500, 2), ("basic", 100, 10_000, 10), ("pro", 500, 50_000, 50)]


def _inspect(connection: Connection) -> tuple[set[str], list[tuple[str, int, int, int]]]:
    tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    if "subscription_tiers" not in tables:
        return tables, []
    rows = connection.execute(
        text(
            "SELECT name, requests_per_minute, requests_per_day, max_concurrent_executions"
            " FROM subscription_tiers ORDER BY id"
        )
    )
    return tables, [(r[0], r[1], r[2], r[3]) for r in rows]


async def _on_connection(url: str, read: Callable[[Connection], T]) -> T:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(read)
    finally:
        await engine.dispose()


async def _schema(url: str) -> tuple[set[str], list[tuple[str, int, int, int]]]:
    return await _on_connection(url, _inspect)


async def _diff(url: str) -> list[object]:
    return await _on_connection(
        url, lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
    )


@pytest.mark.anyio
async def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    assert await current_async(database_url) is None

    await upgrade_async(database_url)
    assert await current_async(database_url) == head()
    assert await _schema(database_url) == (TABLES, SEEDED_TIERS)

    await downgrade_async(database_url, "base")
    assert await current_async(database_url) is None
    assert await _schema(database_url) == (set(), [])

    await upgrade_async(database_url)
    assert await current_async(database_url) == head()
    assert await _schema(database_url) == (TABLES, SEEDED_TIERS)


@pytest.mark.anyio
async def test_every_revision_migrates_a_database_that_holds_an_account(database_url: str) -> None:
    # SQLite's batch mode copies a table and drops the old one; while SQLite enforced
    # foreign keys, dropping subscription_tiers with an account on a tier failed, so every
    # upgrade that rebuilt it (0007, 0010) failed on any database `make run` had made.
    await upgrade_async(database_url, "0001")
    user_id, key_id = uuid.uuid4(), uuid.uuid4()
    users = sa.table(
        "users",
        sa.column("id", sa.Uuid()),
        sa.column("email", sa.String()),
        sa.column("tier_id", sa.Integer()),
    )
    keys = sa.table(
        "api_keys",
        sa.column("id", sa.Uuid()),
        sa.column("user_id", sa.Uuid()),
        sa.column("name", sa.String()),
        sa.column("prefix", sa.String()),
        sa.column("key_hash", sa.String()),
    )

    def add_account(connection: Connection) -> None:
        tier = connection.execute(text("SELECT id FROM subscription_tiers WHERE name = 'pro'"))
        connection.execute(
            users.insert().values(id=user_id, email="ada@example.com", tier_id=tier.scalar_one())
        )
        connection.execute(
            keys.insert().values(
                id=key_id, user_id=user_id, name="k", prefix="ww_0000", key_hash="0" * 64
            )
        )
        connection.commit()

    def account(connection: Connection) -> tuple[str, str, int]:
        row = connection.execute(
            text(
                "SELECT users.email, subscription_tiers.name, COUNT(api_keys.id) FROM users"
                " JOIN subscription_tiers ON subscription_tiers.id = users.tier_id"
                " JOIN api_keys ON api_keys.user_id = users.id GROUP BY 1, 2"
            )
        ).one()
        return row[0], row[1], row[2]

    await _on_connection(database_url, add_account)
    await upgrade_async(database_url)
    assert await _on_connection(database_url, account) == ("ada@example.com", "pro", 1)
    await downgrade_async(database_url, "0001")
    assert await _on_connection(database_url, account) == ("ada@example.com", "pro", 1)
    await upgrade_async(database_url)
    assert await _on_connection(database_url, account) == ("ada@example.com", "pro", 1)


@pytest.mark.anyio
async def test_pro_has_a_request_budget_of_its_own_the_others_the_servers(
    database_url: str,
) -> None:
    # 0013: NULL is the server's API_REQUESTS_PER_MINUTE / _PER_DAY; going back drops both.
    def budgets(connection: Connection) -> dict[str, tuple[int | None, int | None]] | None:
        columns = {
            column["name"] for column in inspect(connection).get_columns("subscription_tiers")
        }
        if "api_requests_per_minute" not in columns:
            return None
        rows = connection.execute(
            text(
                "SELECT name, api_requests_per_minute, api_requests_per_day"
                " FROM subscription_tiers ORDER BY id"
            )
        )
        return {row[0]: (row[1], row[2]) for row in rows}

    await upgrade_async(database_url)
    expected = {"free": (None, None), "basic": (None, None), "pro": (3000, 300_000)}
    assert await _on_connection(database_url, budgets) == expected
    await downgrade_async(database_url, "0012")
    assert await _on_connection(database_url, budgets) is None
    await upgrade_async(database_url)
    assert await _on_connection(database_url, budgets) == expected


@pytest.mark.anyio
async def test_unmetered_runs_keep_a_null_fuel_figure_until_a_downgrade(database_url: str) -> None:
    # 0012: a run without a fuel budget records NULL; the schema before has no NULL to
    # hold, so going back writes 0 and the column is NOT NULL again.
    await upgrade_async(database_url)
    database = Database(database_url)
    try:
        async with database.session() as session:
            user = await make_user(session)
            records = [usage_record(user.id, fuel_consumed=fuel) for fuel in (None, 7)]
            await usage_logs.insert_many(session, records)
            await session.commit()
    finally:
        await database.dispose()

    def figures(connection: Connection) -> tuple[list[int | None], bool]:
        rows = connection.execute(text("SELECT fuel_consumed FROM usage_logs ORDER BY 1"))
        [column] = [
            column
            for column in inspect(connection).get_columns("usage_logs")
            if column["name"] == "fuel_consumed"
        ]
        return [row[0] for row in rows], bool(column["nullable"])

    head_figures = await _on_connection(database_url, figures)
    assert sorted(head_figures[0], key=lambda fuel: fuel or 0) == [None, 7]
    assert head_figures[1] is True

    await downgrade_async(database_url, "0011")
    assert await _on_connection(database_url, figures) == ([0, 7], False)

    await upgrade_async(database_url)
    assert await _on_connection(database_url, figures) == ([0, 7], True)


def test_sync_api_from_code_without_an_event_loop(database_url: str) -> None:
    # The CLI's path: plain functions, no loop running (the fixture thread stands in).
    def cycle() -> list[str | None]:
        seen = [current(database_url)]
        upgrade(database_url)
        seen.append(current(database_url))
        downgrade(database_url, "base")
        seen.append(current(database_url))
        return seen

    assert run_outside_loop(cycle) == [None, head(), None]


@pytest.mark.anyio
async def test_sync_api_refuses_to_run_inside_an_event_loop(database_url: str) -> None:
    with pytest.raises(RuntimeError, match="upgrade_async"):
        upgrade(database_url)
    with pytest.raises(RuntimeError, match="current_async"):
        current(database_url)


@pytest.mark.anyio
async def test_a_database_reports_its_schema_as_its_url_does(database_url: str) -> None:
    """Readiness asks through the app's `Database` (its pool), start-up through a URL."""
    database = Database(database_url)
    try:
        missing = await database_schema_problem(database)
        assert missing == await schema_problem_async(database_url)
        assert missing is not None
        assert "wasmwiz db upgrade" in missing

        await upgrade_async(database_url)
        assert await database_schema_problem(database) is None
        pool = database.engine.pool
        assert isinstance(pool, QueuePool)
        assert pool.checkedin() == 1  # asked on a connection of its pool

        await downgrade_async(database_url, "-1")
        behind = await database_schema_problem(database)
        assert behind == await schema_problem_async(database_url)
        assert behind is not None
        assert f"this release needs {head()}" in behind
    finally:
        await database.dispose()


@pytest.mark.anyio
async def test_models_match_the_migrations(migrated_database_url: str) -> None:
    assert await _diff(migrated_database_url) == []


def test_one_head_and_every_file_shipped_in_the_package() -> None:
    config = alembic_config("sqlite://")
    script_location = Path(config.get_main_option("script_location") or "")
    assert (script_location / "env.py").is_file()
    assert (script_location / "script.py.mako").is_file()
    assert ScriptDirectory.from_config(config).get_heads() == [head()]
