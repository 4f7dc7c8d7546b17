"""PostgreSQL's planner reads an account's (or a key's) usage range through an index, for
every grouping: the analytics queries never scan the whole usage log."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Executable, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from tests.persistence.factories import make_key, make_user
from wasmwiz.persistence.repositories.usage_analytics import (
    After,
    Grouping,
    UsageScope,
    grouped_totals_statement,
    outcomes_by_group_statement,
)

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]


class Explain(Executable, ClauseElement):
    """EXPLAIN of a statement, its parameters bound as the statement's own."""

    inherit_cache = False

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement


@compiles(Explain, "postgresql")
def _explain(element: Explain, compiler: SQLCompiler, **kw: Any) -> str:
    return "EXPLAIN " + compiler.process(element.statement, **kw)


async def plan(session: AsyncSession, statement: ClauseElement) -> str:
    return "\n".join(row[0] for row in await session.execute(Explain(statement)))


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_the_grouped_queries_read_one_accounts_range_by_index(
    db_session: AsyncSession,
) -> None:
    user = await make_user(db_session)
    key = await make_key(db_session, user)
    others = [await make_user(db_session) for _ in range(3)]
    # 200,000 runs over a year, in time order as they are written, of many accounts: one
    # in 1,000 is this account's, half of those by the key.
    await db_session.execute(
        text(
            """
            INSERT INTO usage_logs (id, user_id, api_key_id, created_at, duration_ms, status,
                exit_code, module_size, module_sha256, input_size, output_size, stderr_size,
                memory_peak_bytes, fuel_consumed, cached)
            SELECT gen_random_uuid(),
                CASE WHEN n % 1000 = 0 THEN CAST(:user AS uuid)
                     ELSE (CAST(:others AS uuid[]))[1 + n % 3] END,
                CASE WHEN n % 2000 = 0 THEN CAST(:key AS uuid) END,
                TIMESTAMPTZ '2025-01-01 00:00:00+00' + n * INTERVAL '157 seconds',
                1.5, 'success', 0, 100, md5(CAST(n % 40 AS text)) || md5('x'), 1, 2, 0,
                65536, 1000, false
            FROM generate_series(1, 200000) AS n
            """
        ),
        {"user": str(user.id), "others": [str(other.id) for other in others], "key": str(key.id)},
    )
    await db_session.execute(text("ANALYZE usage_logs"))
    february = UsageScope(
        since=datetime(2025, 2, 1, tzinfo=UTC),
        until=datetime(2025, 3, 1, tzinfo=UTC),
        user_id=user.id,
    )
    # A page's outcomes: time groups narrow the range, the others are named.
    named: dict[Grouping, list[Any]] = {
        Grouping.KEY: [None, key.id],
        Grouping.OUTCOME: ["success"],
        Grouping.MODULE: ["0" * 64],
        Grouping.ACCOUNT: [user.id],
    }
    for grouping in Grouping:
        for statement in (
            grouped_totals_statement(february, grouping, limit=101),
            outcomes_by_group_statement(february, grouping, named.get(grouping, [])),
        ):
            explained = await plan(db_session, statement)
            assert "ix_usage_logs_user_id_created_at" in explained, (grouping, explained)
            assert "Seq Scan" not in explained, (grouping, explained)
    # A later page of keys: `api_key_id IS NOT NULL` lets the key index serve it as well.
    paged = await plan(
        db_session, grouped_totals_statement(february, Grouping.KEY, after=After(None), limit=101)
    )
    assert "Index Scan using ix_usage_logs_" in paged, paged
    assert "Seq Scan" not in paged, paged

    by_key = UsageScope(
        since=february.since, until=february.until, user_id=user.id, api_key_id=key.id
    )
    explained = await plan(db_session, grouped_totals_statement(by_key, Grouping.DAY, limit=101))
    # Either composite index serves a key's runs: both lead with an equality.
    assert (
        "ix_usage_logs_api_key_id_created_at" in explained
        or "ix_usage_logs_user_id_created_at" in explained
    ), explained
    assert "Seq Scan" not in explained

    # The admin view of one day across accounts: the created_at index.
    one_day = UsageScope(
        since=datetime(2025, 2, 1, tzinfo=UTC), until=datetime(2025, 2, 2, tzinfo=UTC)
    )
    explained = await plan(
        db_session, grouped_totals_statement(one_day, Grouping.ACCOUNT, limit=101)
    )
    assert "ix_usage_logs_created_at" in explained, explained
    assert "Seq Scan" not in explained
