"""Usage analytics: an account's (or, for an administrator, every account's) runs in a UTC
range, grouped by day, hour, key, outcome, module or account, a page at a time.

The query's parameters arrive as the caller typed them and are checked here, so every
adapter refuses the same things with the same code (`invalid_usage_query`). Day and hour
buckets are UTC, as the daily quota's: a day's figures are what counted against that day's
quota (ratelimit/bucket.py, `utc_day`).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from wasmwiz.errors import InvalidParameter
from wasmwiz.persistence.repositories import api_keys as key_repository
from wasmwiz.persistence.repositories import usage_analytics as analytics
from wasmwiz.persistence.repositories.usage_analytics import After, Grouping, UsageScope
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.sandbox.models import Outcome

__all__ = [
    "DEFAULT_DAYS",
    "DEFAULT_LIMIT",
    "MAX_DAYS",
    "MAX_HOUR_DAYS",
    "MAX_LIMIT",
    "OUTCOMES",
    "Grouping",
    "UsageAnalyticsService",
    "UsageParams",
    "UsageRow",
    "UsageTable",
]

DEFAULT_DAYS = 30
MAX_DAYS = 366
# An hour grouping answers a row per hour: 31 days is 744 of them.
MAX_HOUR_DAYS = 31
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
# The outcomes a run can have, in the order CSV columns list them.
OUTCOMES: tuple[str, ...] = tuple(outcome.value for outcome in Outcome)
_ACCOUNT_GROUPINGS = tuple(grouping for grouping in Grouping if grouping is not Grouping.ACCOUNT)
_TIME_GROUPINGS = {Grouping.DAY: timedelta(days=1), Grouping.HOUR: timedelta(hours=1)}
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# "+02:00" in a query string arrives as " 02:00" unless the client encoded the "+".
_SPACED_OFFSET = re.compile(r"(.*\d) (\d{2}(?::?\d{2})?)")


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageParams:
    """A usage query's parameters as given (None: left out)."""

    since: str | None = None
    until: str | None = None
    group_by: str | None = None
    key_id: str | None = None
    user_id: str | None = None  # the admin view only
    cursor: str | None = None
    limit: int = DEFAULT_LIMIT


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageRow:
    """One group's figures. `group` is its value: `2026-01-31`, `2026-01-31T23:00:00Z`, a
    key's id (None: the web playground's runs), an outcome, a module's sha256, an account's
    id. `name` is the key's name, the module's names (space-separated) or the account's email."""

    group: str | None
    name: str | None
    executions: int
    outcomes: dict[str, int]
    cached: int
    wall_time_ms: float
    fuel_consumed: int
    memory_peak_bytes_max: int
    input_bytes: int
    output_bytes: int
    stderr_bytes: int


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageTable:
    group_by: Grouping
    since: datetime
    until: datetime
    key_id: uuid.UUID | None
    user_id: uuid.UUID | None
    rows: list[UsageRow] = field(default_factory=list)
    next_cursor: str | None = None


def _refuse(message: str) -> InvalidParameter:
    return InvalidParameter(message, code=ProblemCode.INVALID_USAGE_QUERY)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _instant(name: str, text: str, *, end: bool) -> datetime:
    """A bound of the range: a date is a whole UTC day (`to`'s included), a time is UTC."""
    text = text.strip()
    try:
        if _DATE.fullmatch(text):
            day = date.fromisoformat(text)
            return _midnight(day) + timedelta(days=1) if end else _midnight(day)
        spaced = _SPACED_OFFSET.fullmatch(text)
        if spaced:
            text = f"{spaced[1]}+{spaced[2]}"
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise _refuse(
            f"`{name}` is neither a date (YYYY-MM-DD) nor an ISO 8601 time with an offset."
        ) from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise _refuse(f"`{name}` needs an offset (e.g. `Z` or `+02:00`): times are not guessed.")
    return moment.astimezone(UTC)


def _uuid(name: str, text: str | None) -> uuid.UUID | None:
    if text is None:
        return None
    try:
        return uuid.UUID(text.strip())
    except ValueError:
        raise _refuse(f"`{name}` is not an id.") from None


def _group_text(grouping: Grouping, value: object) -> str | None:
    if value is None:
        return None
    if grouping is Grouping.HOUR:
        assert isinstance(value, datetime)
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _encode_cursor(grouping: Grouping, value: str | None) -> str:
    raw = json.dumps([str(grouping), value]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, grouping: Grouping) -> str | None:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        given, value = json.loads(raw)
        if given != grouping or not (value is None or isinstance(value, str)):
            raise ValueError("another grouping's cursor")
        return value
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _refuse("`cursor` is not one this API gave out for this `group_by`.") from None


@dataclass(frozen=True, slots=True)
class _Query:
    grouping: Grouping
    scope: UsageScope
    after: After | None
    limit: int


class UsageAnalyticsService:
    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._clock = clock

    async def account_usage(
        self, session: AsyncSession, user_id: uuid.UUID, params: UsageParams
    ) -> UsageTable:
        """One account's usage, as its `usage:read` keys and its web pages see it."""
        if params.user_id is not None:
            raise _refuse("`user_id` is for the admin view.")
        query = self._query(params, user_id=user_id, groupings=_ACCOUNT_GROUPINGS)
        return await self._table(session, query)

    async def admin_usage(self, session: AsyncSession, params: UsageParams) -> UsageTable:
        """Every account's usage (or one's, with `user_id`), for an administrator."""
        user_id = _uuid("user_id", params.user_id)
        query = self._query(params, user_id=user_id, groupings=tuple(Grouping))
        return await self._table(session, query)

    def _query(
        self,
        params: UsageParams,
        *,
        user_id: uuid.UUID | None,
        groupings: tuple[Grouping, ...],
    ) -> _Query:
        names = ", ".join(str(grouping) for grouping in groupings)
        try:
            grouping = Grouping((params.group_by or Grouping.DAY).strip())
        except ValueError:
            raise _refuse(f"`group_by` is one of: {names}.") from None
        if grouping not in groupings:
            raise _refuse(f"`group_by` is one of: {names}.")
        if not 1 <= params.limit <= MAX_LIMIT:
            raise _refuse(f"`limit` is from 1 to {MAX_LIMIT}.")
        since, until = self._range(params)
        days = MAX_HOUR_DAYS if grouping is Grouping.HOUR else MAX_DAYS
        if until - since > timedelta(days=days):
            raise _refuse(f"The range is over {days} days, the most for `group_by={grouping}`.")
        after = None
        if params.cursor is not None:
            last = _decode_cursor(params.cursor, grouping)
            step = _TIME_GROUPINGS.get(grouping)
            if step is not None:
                if last is None:
                    raise _refuse("`cursor` is not one this API gave out for this `group_by`.")
                since = max(since, _instant("cursor", last, end=False) + step)
            else:
                value: uuid.UUID | str | None = last
                if grouping in (Grouping.KEY, Grouping.ACCOUNT) and last is not None:
                    value = _uuid("cursor", last)
                after = After(value)
        scope = UsageScope(
            since=since,
            until=until,
            user_id=user_id,
            api_key_id=_uuid("key_id", params.key_id),
        )
        return _Query(grouping, scope, after, params.limit)

    def _range(self, params: UsageParams) -> tuple[datetime, datetime]:
        """[since, until): by default the last 30 UTC days, today included."""
        if params.until is not None:
            until = _instant("to", params.until, end=True)
        else:
            until = _midnight(self._clock().astimezone(UTC).date()) + timedelta(days=1)
        if params.since is not None:
            since = _instant("from", params.since, end=False)
        else:
            since = until - timedelta(days=DEFAULT_DAYS)
        if since >= until:
            raise _refuse("`from` must come before `to`.")
        return since, until

    async def _table(self, session: AsyncSession, query: _Query) -> UsageTable:
        grouping, scope = query.grouping, query.scope
        if session.get_bind().dialect.name == "postgresql" and not session.in_transaction():
            # The totals and the outcomes from one snapshot, so a batch of usage records
            # committed between the two queries cannot make them disagree. (SQLite's read
            # is a snapshot already; a caller's transaction under way keeps its own level.)
            await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        table = UsageTable(
            group_by=grouping,
            since=scope.since,
            until=scope.until,
            key_id=scope.api_key_id,
            user_id=scope.user_id,
        )
        if scope.since >= scope.until:  # a cursor past the last bucket
            return table
        totals = await analytics.grouped_totals(
            session, scope, grouping, after=query.after, limit=query.limit + 1
        )
        more = len(totals) > query.limit
        totals = totals[: query.limit]
        if not totals:
            return table
        outcomes = await analytics.outcomes_by_group(
            session, self._page_scope(scope, grouping, totals), grouping, [t.group for t in totals]
        )
        names = await self._names(session, grouping, scope, [total.group for total in totals])
        rows = [
            UsageRow(
                group=_group_text(grouping, total.group),
                name=names.get(total.group),
                executions=total.executions,
                outcomes=dict(
                    sorted(
                        outcomes.get(total.group, {}).items(),
                        key=lambda item: (-item[1], item[0]),
                    )
                ),
                cached=total.cached,
                wall_time_ms=total.wall_time_ms,
                fuel_consumed=total.fuel_consumed,
                memory_peak_bytes_max=total.memory_peak_bytes_max,
                input_bytes=total.input_bytes,
                output_bytes=total.output_bytes,
                stderr_bytes=total.stderr_bytes,
            )
            for total in totals
        ]
        next_cursor = _encode_cursor(grouping, rows[-1].group) if more else None
        return UsageTable(
            group_by=grouping,
            since=scope.since,
            until=scope.until,
            key_id=scope.api_key_id,
            user_id=scope.user_id,
            rows=rows,
            next_cursor=next_cursor,
        )

    @staticmethod
    def _page_scope(
        scope: UsageScope, grouping: Grouping, totals: list[analytics.GroupTotals]
    ) -> UsageScope:
        """`scope` narrowed to the page's time buckets (other groups are named instead)."""
        step = _TIME_GROUPINGS.get(grouping)
        if step is None:
            return scope
        first, last = totals[0].group, totals[-1].group
        assert isinstance(first, date)
        assert isinstance(last, date)
        start = first if isinstance(first, datetime) else _midnight(first)
        end = (last if isinstance(last, datetime) else _midnight(last)) + step
        return UsageScope(
            since=max(scope.since, start),
            until=min(scope.until, end),
            user_id=scope.user_id,
            api_key_id=scope.api_key_id,
        )

    @staticmethod
    async def _names(
        session: AsyncSession,
        grouping: Grouping,
        scope: UsageScope,
        groups: list[date | datetime | uuid.UUID | str | None],
    ) -> dict[Any, str]:
        if grouping is Grouping.KEY:
            keys = {group for group in groups if isinstance(group, uuid.UUID)}
            found = await key_repository.names_by_id(session, keys)
            return {key_id: name for key_id, (name, _prefix) in found.items()}
        if grouping is Grouping.ACCOUNT:
            accounts = [group for group in groups if isinstance(group, uuid.UUID)]
            return dict(await analytics.emails_by_id(session, accounts))
        if grouping is Grouping.MODULE:
            digests = [group for group in groups if isinstance(group, str)]
            by_digest = await analytics.module_names(session, digests, user_id=scope.user_id)
            return {digest: " ".join(names) for digest, names in by_digest.items()}
        return {}
