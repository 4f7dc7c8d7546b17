"""A PostgreSQL schema built by replaying a recorded upgrade equals one the upgrade built.

`migrated_database_url` hands a thousand PostgreSQL tests a replayed schema
(tests/fixtures/database.py, `RecordedMigration`); this is what lets them trust it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text

from tests.fixtures.database import RecordedMigration, new_postgres_schema, run_outside_loop
from wasmwiz.persistence.database import create_engine
from wasmwiz.persistence.migrate import upgrade

pytestmark = pytest.mark.postgres

# What the catalog says about one schema, `:schema` its name. Each query's rows are sorted,
# and the schema's name is written `<schema>` where a definition spells it out.
CATALOG = {
    "tables": """
        SELECT table_name, table_type FROM information_schema.tables
        WHERE table_schema = :schema""",
    "columns": """
        SELECT table_name, ordinal_position, column_name, data_type, udt_name,
               character_maximum_length, numeric_precision, numeric_scale, datetime_precision,
               is_nullable, column_default, is_identity, identity_generation, is_generated,
               generation_expression, collation_name
        FROM information_schema.columns WHERE table_schema = :schema""",
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_catalog.pg_indexes
        WHERE schemaname = :schema""",
    "constraints": """
        SELECT t.relname, c.conname, c.contype, c.condeferrable, c.condeferred,
               c.convalidated, pg_catalog.pg_get_constraintdef(c.oid, true)
        FROM pg_catalog.pg_constraint c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace
        LEFT JOIN pg_catalog.pg_class t ON t.oid = c.conrelid
        WHERE n.nspname = :schema""",
    "sequences": """
        SELECT sequencename, data_type::text, start_value, min_value, max_value, increment_by,
               cycle, cache_size, last_value
        FROM pg_catalog.pg_sequences WHERE schemaname = :schema""",
    "sequence owners": """
        SELECT s.relname, t.relname, a.attname
        FROM pg_catalog.pg_class s
        JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
        JOIN pg_catalog.pg_depend d ON d.objid = s.oid AND d.deptype IN ('a', 'i')
        JOIN pg_catalog.pg_class t ON t.oid = d.refobjid
        JOIN pg_catalog.pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
        WHERE s.relkind = 'S' AND n.nspname = :schema""",
    "types": """
        SELECT t.typname, t.typtype,
               array_to_string(array(SELECT e.enumlabel FROM pg_catalog.pg_enum e
                                     WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), ',')
        FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE n.nspname = :schema""",
    "triggers": """
        SELECT c.relname, g.tgname, pg_catalog.pg_get_triggerdef(g.oid, true)
        FROM pg_catalog.pg_trigger g JOIN pg_catalog.pg_class c ON c.oid = g.tgrelid
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = :schema AND NOT g.tgisinternal""",
    "functions": """
        SELECT p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid), p.prosrc
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = :schema""",
}

# Columns filled with the time a row was written (`DEFAULT now()`): seeded rows differ there
# between any two schemas, however they were built.
WRITE_TIME_DEFAULT = "now()"


def _normalized(value: Any, schema: str) -> Any:
    return value.replace(schema, "<schema>") if isinstance(value, str) else value


async def _describe_async(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_engine(url, pooled=False)
    try:
        async with engine.connect() as connection:
            described: dict[str, list[tuple[Any, ...]]] = {}
            for name, query in CATALOG.items():
                result = await connection.execute(text(query), {"schema": schema})
                described[name] = sorted(
                    (tuple(_normalized(value, schema) for value in row) for row in result),
                    key=repr,
                )
            tables = [row[0] for row in described["tables"]]
            for table in tables:
                columns = [
                    row[2]
                    for row in sorted(described["columns"], key=lambda row: row[1])
                    if row[0] == table and row[10] != WRITE_TIME_DEFAULT
                ]
                listed = ", ".join(f'"{column}"' for column in columns)
                rows = await connection.execute(text(f'SELECT {listed} FROM "{table}"'))
                described[f"rows of {table}"] = sorted((tuple(row) for row in rows), key=repr)
            return described
    finally:
        await engine.dispose()


def _describe(url: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    return run_outside_loop(lambda: asyncio.run(_describe_async(url, schema)))


@contextmanager
def _upgraded_schema() -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    with new_postgres_schema() as (url, schema):
        run_outside_loop(lambda: upgrade(url))
        yield _describe(url, schema)


@contextmanager
def _replayed_schema(migration: RecordedMigration) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    with new_postgres_schema() as (url, schema):
        run_outside_loop(lambda: migration.replay(url))
        yield _describe(url, schema)


def test_a_replayed_schema_equals_an_upgraded_one(
    recorded_postgres_migration: RecordedMigration,
) -> None:
    with (
        _upgraded_schema() as upgraded,
        _replayed_schema(recorded_postgres_migration) as replayed,
    ):
        assert upgraded["tables"], "the description found no tables"
        assert upgraded["rows of subscription_tiers"], "nor the seeded tiers"
        assert upgraded["rows of alembic_version"], "nor the revision"
        assert replayed == upgraded


def _without(migration: RecordedMigration, starting: str) -> RecordedMigration:
    """`migration` less the last statement that starts with `starting`."""
    statements = list(migration.statements)
    index = max(i for i, each in enumerate(statements) if each.sql.lstrip().startswith(starting))
    del statements[index]
    return replace(migration, statements=tuple(statements))


@pytest.mark.parametrize(
    ("left_out", "where"),
    [
        ("ALTER TABLE subscription_tiers ADD CONSTRAINT", "constraints"),
        ("CREATE INDEX", "indexes"),
        ("ALTER TABLE usage_logs ADD COLUMN cached", "columns"),
        ("UPDATE subscription_tiers SET", "rows of subscription_tiers"),
        ("UPDATE alembic_version", "rows of alembic_version"),
    ],
)
def test_the_comparison_sees_a_statement_left_out(
    recorded_postgres_migration: RecordedMigration, left_out: str, where: str
) -> None:
    """The equality above is worth something: a replay short of one statement differs."""
    with (
        _upgraded_schema() as upgraded,
        _replayed_schema(_without(recorded_postgres_migration, left_out)) as replayed,
    ):
        assert replayed[where] != upgraded[where]


def test_a_migration_naming_its_schema_is_refused() -> None:
    """Replayed elsewhere, a statement naming the recording's schema would reach into it.

    Our migrations name none, so a name their statements do contain stands in for it.
    """
    refused = pytest.raises(RuntimeError, match="'alembic_version', so it cannot be replayed")
    with new_postgres_schema() as (url, _schema), refused:
        run_outside_loop(lambda: RecordedMigration.of_upgrade(url, "alembic_version"))
