"""Usage figures grouped by UTC day or hour, key, outcome, module or account, summed in SQL.

Every query filters on a half-open range of `created_at` and on the account (or key) first,
so the indexes (user_id, created_at), (api_key_id, created_at) and (created_at) of
usage_logs serve it; tests/persistence/test_usage_analytics_plan.py asks PostgreSQL.
Groups are returned in a stable order, a page at a time: time buckets oldest first, the
others by their value (the web playground's runs, with no key, first among keys).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    Select,
    SQLColumnExpression,
    cast,
    func,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import Label
from sqlalchemy.sql.functions import FunctionElement

from wasmwiz.persistence.models import (
    PublicRuntime,
    UsageLog,
    User,
    WasmModule,
    WasmModuleName,
)
from wasmwiz.persistence.types import UTCDateTime

__all__ = [
    "After",
    "GroupTotals",
    "Grouping",
    "UsageScope",
    "emails_by_id",
    "grouped_totals",
    "grouped_totals_statement",
    "module_names",
    "outcomes_by_group",
    "outcomes_by_group_statement",
    "utc_date",
]


_Select = TypeVar("_Select", bound=Select[*tuple[Any, ...]])


class Grouping(enum.StrEnum):
    DAY = "day"
    HOUR = "hour"
    KEY = "key"
    OUTCOME = "outcome"
    MODULE = "module"
    ACCOUNT = "account"


class _UTCDate(FunctionElement[date]):
    """The UTC calendar date of a timestamp column."""

    type = Date()
    name = "utc_date"
    inherit_cache = True


@compiles(_UTCDate, "sqlite")
def _utc_date_sqlite(element: _UTCDate, compiler: SQLCompiler, **kw: Any) -> str:
    # Timestamps are stored as UTC text, so the date is a prefix of it.
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(_UTCDate, "postgresql")
def _utc_date_postgresql(element: _UTCDate, compiler: SQLCompiler, **kw: Any) -> str:
    # Not the session time zone: days are UTC days everywhere, as the daily quota's.
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


class _UTCHour(FunctionElement[datetime]):
    """The start of the UTC hour of a timestamp column, read back as an aware datetime."""

    type = UTCDateTime()
    name = "utc_hour"
    inherit_cache = True


@compiles(_UTCHour, "sqlite")
def _utc_hour_sqlite(element: _UTCHour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H:00:00', {compiler.process(element.clauses, **kw)})"


@compiles(_UTCHour, "postgresql")
def _utc_hour_postgresql(element: _UTCHour, compiler: SQLCompiler, **kw: Any) -> str:
    return f"date_trunc('hour', timezone('UTC', {compiler.process(element.clauses, **kw)}))"


def utc_date(column: SQLColumnExpression[datetime]) -> ColumnElement[date]:
    """`column`'s UTC date, computed by the database (SQLite or PostgreSQL)."""
    return _UTCDate(column)


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageScope:
    """Whose runs, and when: `since` inclusive, `until` exclusive."""

    since: datetime
    until: datetime
    user_id: uuid.UUID | None = None  # None: every account (the admin view)
    api_key_id: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class After:
    """Where the previous page of key, outcome, module or account groups ended: its last
    group's value (None: the web playground's group of key-less runs)."""

    value: uuid.UUID | str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class GroupTotals:
    group: date | datetime | uuid.UUID | str | None
    executions: int
    cached: int
    wall_time_ms: float
    fuel_consumed: int
    memory_peak_bytes_max: int
    input_bytes: int
    output_bytes: int
    stderr_bytes: int


def _group_expression(grouping: Grouping) -> SQLColumnExpression[Any]:
    match grouping:
        case Grouping.DAY:
            return _UTCDate(UsageLog.created_at)
        case Grouping.HOUR:
            return _UTCHour(UsageLog.created_at)
        case Grouping.KEY:
            return UsageLog.api_key_id
        case Grouping.OUTCOME:
            return UsageLog.status
        case Grouping.MODULE:
            return UsageLog.module_sha256
        case Grouping.ACCOUNT:
            return UsageLog.user_id


def _scoped(statement: _Select, scope: UsageScope) -> _Select:
    statement = statement.where(
        UsageLog.created_at >= scope.since, UsageLog.created_at < scope.until
    )
    if scope.user_id is not None:
        statement = statement.where(UsageLog.user_id == scope.user_id)
    if scope.api_key_id is not None:
        statement = statement.where(UsageLog.api_key_id == scope.api_key_id)
    return statement


def _sum(column: SQLColumnExpression[int] | SQLColumnExpression[int | None]) -> ColumnElement[int]:
    # PostgreSQL sums a bigint as numeric; back to a bigint, as SQLite answers. SUM skips
    # NULL: fuel_consumed sums the metered runs (a run without a fuel budget has NULL).
    return cast(func.sum(column), BigInteger)


def grouped_totals_statement(
    scope: UsageScope, grouping: Grouping, *, after: After | None = None, limit: int
) -> Select[Any]:
    """The totals query, on its own so a test can ask the planner about it."""
    group: Label[Any] = _group_expression(grouping).label("usage_group")
    statement = _scoped(
        select(
            group,
            func.count().label("executions"),
            func.count().filter(UsageLog.cached.is_(True)).label("cached"),
            func.sum(UsageLog.duration_ms).label("wall_time_ms"),
            _sum(UsageLog.fuel_consumed).label("fuel_consumed"),
            func.max(UsageLog.memory_peak_bytes).label("memory_peak_bytes_max"),
            _sum(UsageLog.input_size).label("input_bytes"),
            _sum(UsageLog.output_size).label("output_bytes"),
            _sum(UsageLog.stderr_size).label("stderr_bytes"),
        ),
        scope,
    )
    if after is not None:
        column = _group_expression(grouping)
        if grouping in (Grouping.DAY, Grouping.HOUR):
            raise ValueError("time groups page by narrowing the scope's range")
        statement = statement.where(
            column.is_not(None) if after.value is None else column > after.value
        )
    order = group.asc().nulls_first() if grouping is Grouping.KEY else group.asc()
    return statement.group_by(group).order_by(order).limit(limit)


async def grouped_totals(
    session: AsyncSession,
    scope: UsageScope,
    grouping: Grouping,
    *,
    after: After | None = None,
    limit: int,
) -> list[GroupTotals]:
    """At most `limit` groups of runs in `scope`, in their order, after `after`'s group."""
    rows = await session.execute(
        grouped_totals_statement(scope, grouping, after=after, limit=limit)
    )
    return [
        GroupTotals(
            group=row.usage_group,
            executions=row.executions,
            cached=row.cached or 0,
            wall_time_ms=float(row.wall_time_ms or 0.0),
            fuel_consumed=int(row.fuel_consumed or 0),
            memory_peak_bytes_max=int(row.memory_peak_bytes_max or 0),
            input_bytes=int(row.input_bytes or 0),
            output_bytes=int(row.output_bytes or 0),
            stderr_bytes=int(row.stderr_bytes or 0),
        )
        for row in rows
    ]


def outcomes_by_group_statement(
    scope: UsageScope,
    grouping: Grouping,
    groups: Sequence[date | datetime | uuid.UUID | str | None],
) -> Select[Any, str, int]:
    """The outcome counts query, on its own so a test can ask the planner about it."""
    group: Label[Any] = _group_expression(grouping).label("usage_group")
    statement = _scoped(select(group, UsageLog.status, func.count()), scope)
    if grouping not in (Grouping.DAY, Grouping.HOUR):
        column = _group_expression(grouping)
        named = [value for value in groups if value is not None]
        condition = column.in_(named)
        statement = statement.where(
            or_(condition, column.is_(None)) if None in groups else condition
        )
    return statement.group_by(group, UsageLog.status)


async def outcomes_by_group(
    session: AsyncSession,
    scope: UsageScope,
    grouping: Grouping,
    groups: Sequence[date | datetime | uuid.UUID | str | None],
) -> dict[Any, dict[str, int]]:
    """Runs per outcome (`status`) in each of these groups, as `grouped_totals` gave them.

    Time groups are given by narrowing `scope` to them; the others are named.
    """
    if not groups:
        return {}
    found: dict[Any, dict[str, int]] = {}
    statement = outcomes_by_group_statement(scope, grouping, groups)
    for value, status, count in await session.execute(statement):
        found.setdefault(value, {})[status] = count
    return found


async def emails_by_id(
    session: AsyncSession, user_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The email of each of these accounts (a deleted account's is its placeholder)."""
    if not user_ids:
        return {}
    rows = await session.execute(select(User.id, User.email).where(User.id.in_(list(user_ids))))
    return {row.id: row.email for row in rows}


async def module_names(
    session: AsyncSession, sha256s: Sequence[str], *, user_id: uuid.UUID | None
) -> dict[str, list[str]]:
    """The names under which these digests are known: the public runtime's name, and the
    account's own names for its stored module (none without an account), sorted."""
    if not sha256s:
        return {}
    digests = list(sha256s)
    names: dict[str, set[str]] = {}
    runtimes = select(PublicRuntime.sha256, PublicRuntime.name).where(
        PublicRuntime.sha256.in_(digests)
    )
    for sha256, name in await session.execute(runtimes):
        names.setdefault(sha256, set()).add(name)
    if user_id is not None:
        stored = (
            select(WasmModule.sha256, WasmModuleName.name)
            .join(WasmModuleName, WasmModuleName.module_id == WasmModule.id)
            .where(WasmModule.user_id == user_id, WasmModule.sha256.in_(digests))
        )
        for sha256, name in await session.execute(stored):
            names.setdefault(sha256, set()).add(name)
    return {sha256: sorted(found) for sha256, found in names.items()}
