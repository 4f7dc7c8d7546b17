"""The usage dashboard page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from wasmwiz.http_common.dependencies import UsageReportsDep
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep
from wasmwiz.services.api_keys import tier_limits
from wasmwiz.web.rendering import WebRoute, render
from wasmwiz.web.viewer import ViewerDep

router = APIRouter(route_class=WebRoute, include_in_schema=False)


@router.get("/usage")
async def usage_page(
    request: Request, viewer: ViewerDep, usage_reports: UsageReportsDep, session: DatabaseSessionDep
) -> Response:
    user = viewer.require_user()
    report = await usage_reports.report(session, user.id, tier_limits(user.tier))
    return render(request, viewer, "usage.html", {"report": report})
