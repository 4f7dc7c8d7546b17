"""GET /api/v1/usage: the usage dashboard's figures, or with a query, the usage analytics."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field
from starlette.responses import Response

from wasmwiz.api.dependencies import UsageReader
from wasmwiz.api.openapi import usage_responses
from wasmwiz.api.usage_tables import (
    RANGE_HELP,
    UsageQuery,
    UsageTableOut,
    csv_response,
)
from wasmwiz.http_common.dependencies import UsageAnalyticsDep, UsageReportsDep
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep, UnitOfWorkRoute
from wasmwiz.services.usage_reports import REPORT_DAYS

router = APIRouter(tags=["usage"], route_class=UnitOfWorkRoute)


class DayOut(BaseModel):
    day: date
    executions: int


class RecentRunOut(BaseModel):
    execution_id: uuid.UUID
    created_at: datetime
    status: str
    duration_ms: float
    module_sha256: str
    via_api_key: bool = Field(description="False for runs from the web playground.")
    api_key_id: uuid.UUID | None = Field(description="The key the run came from; null: web.")
    api_key_name: str | None = Field(description="That key's name (it may be revoked since).")
    cached: bool = Field(
        default=False,
        description="Answered from the result cache (nothing ran); counted all the same.",
    )


class UsageOut(BaseModel):
    days: list[DayOut] = Field(description=f"Executions per UTC day, last {REPORT_DAYS} days.")
    total: int = Field(description=f"Executions in the last {REPORT_DAYS} days.")
    outcomes: dict[str, int] = Field(description="Executions per `status` in that period.")
    median_duration_ms: float | None
    p95_duration_ms: float | None
    today: int = Field(description="Executions since 00:00 UTC, by every key and the web.")
    daily_quota: int = Field(
        description="The account's daily quota (its tier's), shared by every key and the "
        "web; resets 00:00 UTC. `today` counts against it."
    )
    per_minute: int = Field(description="The account's per-minute rate limit, shared likewise.")
    max_concurrent: int = Field(description="The account's limit on runs in flight at once.")
    tier: str
    recent: list[RecentRunOut]


@router.get(
    "/api/v1/usage",
    summary="Your usage",
    description="Without query parameters: executions per day, outcomes, duration "
    "percentiles, today's count against the account's daily quota and the latest runs with "
    "the key each came from (`UsageOut`). With any of `from`, `to`, `group_by`, `key_id`, "
    "`limit`, `cursor`, `format`: the account's runs in a range, grouped by `group_by` "
    "(`UsageTableOut`, or CSV). " + RANGE_HELP + " Needs the `usage:read` scope.",
    response_model=UsageOut | UsageTableOut,
    responses=usage_responses("/api/v1/usage", summary=True),
)
async def usage(
    principal: UsageReader,
    usage_reports: UsageReportsDep,
    analytics: UsageAnalyticsDep,
    session: DatabaseSessionDep,
    query: Annotated[UsageQuery, Depends()],
) -> UsageOut | UsageTableOut | Response:
    if query.given:
        table = await analytics.account_usage(session, principal.user_id, query.params())
        if query.format == "csv":
            return csv_response(table, prefix="wasmwiz-usage")
        return UsageTableOut.of(table)
    report = await usage_reports.report(session, principal.user_id, principal.tier)
    return UsageOut(
        days=[DayOut(day=day.day, executions=day.count) for day in report.days],
        total=report.total,
        outcomes=report.outcomes,
        median_duration_ms=report.median_ms,
        p95_duration_ms=report.p95_ms,
        today=report.today,
        daily_quota=report.daily_quota,
        per_minute=report.per_minute,
        max_concurrent=report.max_concurrent,
        tier=report.tier,
        recent=[
            RecentRunOut(
                execution_id=run.execution_id,
                created_at=run.created_at,
                status=run.status,
                duration_ms=run.duration_ms,
                module_sha256=run.module_sha256,
                via_api_key=run.via_api_key,
                api_key_id=run.api_key_id,
                api_key_name=run.api_key_name,
                cached=run.cached,
            )
            for run in report.recent
        ],
    )
