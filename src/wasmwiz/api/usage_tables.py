"""The usage analytics' wire format, shared by /api/v1/usage and /api/v1/admin/usage:
the query parameters, the JSON page, and the same rows as CSV."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response, StreamingResponse

from wasmwiz.errors import InvalidParameter
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.usage_analytics import (
    DEFAULT_DAYS,
    DEFAULT_LIMIT,
    MAX_DAYS,
    MAX_HOUR_DAYS,
    MAX_LIMIT,
    OUTCOMES,
    Grouping,
    UsageParams,
    UsageTable,
)

_GROUP_COLUMNS: dict[Grouping, tuple[str, str | None]] = {
    Grouping.DAY: ("day", None),
    Grouping.HOUR: ("hour", None),
    Grouping.KEY: ("api_key_id", "api_key_name"),
    Grouping.OUTCOME: ("outcome", None),
    Grouping.MODULE: ("module_sha256", "module_names"),
    Grouping.ACCOUNT: ("user_id", "email"),
}
_FIGURES = (
    "wall_time_ms",
    "fuel_consumed",
    "memory_peak_bytes_max",
    "input_bytes",
    "output_bytes",
    "stderr_bytes",
)

RANGE_HELP = (
    f"`from` and `to` are UTC dates (`YYYY-MM-DD`, a whole day; `to`'s day is included) or "
    f"ISO 8601 times with an offset (`2026-01-31T22:00:00Z`, `…+02:00`; `to` excluded). "
    f"Left out: the last {DEFAULT_DAYS} UTC days, today included. At most {MAX_DAYS} days, "
    f"{MAX_HOUR_DAYS} with `group_by=hour`. Day and hour buckets are UTC, as the daily "
    f"quota's (it resets at 00:00 UTC). Groups without runs are left out. `format=csv` "
    f"answers the same rows as `text/csv`, the next page's cursor in `X-Next-Cursor`."
)


class UsageQuery:
    """The query parameters, read by both routes; checked by the service."""

    def __init__(
        self,
        since: Annotated[
            str | None,
            Query(
                alias="from",
                max_length=64,
                description="Start: a UTC date, or a time with an offset (included).",
                examples=["2026-01-01"],
            ),
        ] = None,
        until: Annotated[
            str | None,
            Query(
                alias="to",
                max_length=64,
                description="End: a UTC date (its whole day included), or a time with an "
                "offset (excluded).",
                examples=["2026-02-28"],
            ),
        ] = None,
        group_by: Annotated[
            str | None,
            Query(
                max_length=16,
                description="day (default), hour, key, outcome, module; `account` on the "
                "admin view.",
            ),
        ] = None,
        key_id: Annotated[
            str | None, Query(max_length=64, description="Only the runs of this key.")
        ] = None,
        limit: Annotated[
            int | None,
            Query(
                description=f"Groups a page, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT}).",
                # Documented, and checked by the service, which refuses with its own code.
                json_schema_extra={"minimum": 1, "maximum": MAX_LIMIT},
            ),
        ] = None,
        cursor: Annotated[
            str | None,
            Query(max_length=300, description="`next_cursor` of the previous page."),
        ] = None,
        format: Annotated[
            str | None, Query(max_length=8, description="`json` (default) or `csv`.")
        ] = None,
    ) -> None:
        self.format = format
        if format not in (None, "json", "csv"):
            raise InvalidParameter(
                "`format` is `json` or `csv`.", code=ProblemCode.INVALID_USAGE_QUERY
            )
        self.given = any(
            value is not None for value in (since, until, group_by, key_id, limit, cursor, format)
        )
        self.since, self.until, self.group_by = since, until, group_by
        self.key_id, self.cursor = key_id, cursor
        self.limit = DEFAULT_LIMIT if limit is None else limit

    def params(self, *, user_id: str | None = None) -> UsageParams:
        return UsageParams(
            since=self.since,
            until=self.until,
            group_by=self.group_by,
            key_id=self.key_id,
            user_id=user_id,
            cursor=self.cursor,
            limit=self.limit,
        )


class UsageRowOut(BaseModel):
    group: str | None = Field(
        description="The group: `2026-01-31` (day), `2026-01-31T23:00:00Z` (hour), a key's "
        "id (null: the web playground's runs), an outcome, a module's sha256, an account's id."
    )
    name: str | None = Field(
        description="The key's name (revoked keys too), the module's names (space-separated: "
        "a public runtime's, and yours for a stored module), or the account's email; else null."
    )
    executions: int
    outcomes: dict[str, int] = Field(description="Executions per outcome (`status`).")
    cached: int = Field(description="Of them, answered from the result cache.")
    wall_time_ms: float = Field(description="Wall-clock time of the runs, in all.")
    fuel_consumed: int = Field(
        description="Fuel burned, in all, by the runs with a fuel budget: a run without one "
        "is not metered and adds nothing."
    )
    memory_peak_bytes_max: int = Field(description="The largest peak memory of one run.")
    input_bytes: int = Field(description="stdin bytes, in all.")
    output_bytes: int = Field(description="stdout bytes, in all.")
    stderr_bytes: int = Field(description="stderr bytes, in all.")


class UsageTableOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    group_by: str
    since: datetime = Field(alias="from", description="The range's start (UTC, included).")
    until: datetime = Field(alias="to", description="The range's end (UTC, excluded).")
    key_id: uuid.UUID | None
    user_id: uuid.UUID | None = Field(
        description="The account (null on the admin view across accounts)."
    )
    items: list[UsageRowOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last."
    )

    @classmethod
    def of(cls, table: UsageTable) -> UsageTableOut:
        return cls(
            group_by=str(table.group_by),
            since=table.since,
            until=table.until,
            key_id=table.key_id,
            user_id=table.user_id,
            items=[UsageRowOut.model_validate(row, from_attributes=True) for row in table.rows],
            next_cursor=table.next_cursor,
        )


def csv_header(grouping: Grouping) -> list[str]:
    group, name = _GROUP_COLUMNS[grouping]
    return [
        group,
        *([name] if name else []),
        "executions",
        "cached",
        *(f"outcome_{outcome}" for outcome in OUTCOMES),
        *_FIGURES,
    ]


def _csv_lines(table: UsageTable) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(values: list[Any]) -> str:
        writer.writerow(values)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    named = _GROUP_COLUMNS[table.group_by][1] is not None
    yield line(csv_header(table.group_by))
    for row in table.rows:
        yield line(
            [
                row.group or "",
                *([row.name or ""] if named else []),
                row.executions,
                row.cached,
                *(row.outcomes.get(outcome, 0) for outcome in OUTCOMES),
                *(getattr(row, figure) for figure in _FIGURES),
            ]
        )


def csv_response(table: UsageTable, *, prefix: str) -> Response:
    """The table's rows as CSV, a header row first; the next page's cursor in a header."""

    def stamp(moment: datetime) -> str:
        return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    filename = f"{prefix}-{table.group_by}-{stamp(table.since)}-{stamp(table.until)}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if table.next_cursor is not None:
        headers["X-Next-Cursor"] = table.next_cursor
    return StreamingResponse(
        _csv_lines(table), media_type="text/csv; charset=utf-8", headers=headers
    )
