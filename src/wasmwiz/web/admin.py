"""The admin page: users with their tier; change a tier, deactivate or reactivate."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from wasmwiz.errors import PermissionDenied
from wasmwiz.persistence.models import User
from wasmwiz.web.rendering import WebRoute, redirect, render
from wasmwiz.web.viewer import ServicesDep, Viewer, ViewerDep, require_csrf

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PER_PAGE = 25


def _require_admin(viewer: Viewer) -> User:
    user = viewer.require_user()
    if not user.is_admin:
        raise PermissionDenied("Only administrators can see this page.", code="forbidden")
    return user


@router.get("/admin")
async def admin_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    _require_admin(viewer)
    async with services.database.session() as session:
        users = await services.accounts.list_users(session, page=page, per_page=PER_PAGE)
        tiers = await services.accounts.list_tiers(session)
    context = {"users": users, "tiers": tiers, "notice": request.query_params.get("done")}
    return render(request, viewer, "admin.html", context)


@router.post("/admin/users/{user_id}/tier")
async def change_tier(
    request: Request,
    user_id: uuid.UUID,
    viewer: ViewerDep,
    services: ServicesDep,
    tier: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    _require_admin(viewer)
    await require_csrf(request, viewer, services)
    async with services.database.session() as session:
        await services.accounts.set_tier(session, user_id, tier)
        await session.commit()
    return redirect("/admin?done=tier")


@router.post("/admin/users/{user_id}/active")
async def change_active(
    request: Request,
    user_id: uuid.UUID,
    viewer: ViewerDep,
    services: ServicesDep,
    active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    admin = _require_admin(viewer)
    await require_csrf(request, viewer, services)
    async with services.database.session() as session:
        await services.accounts.set_active(session, user_id, active == "true", acting=admin.id)
        if active != "true":
            # A deactivated user is signed out everywhere at once.
            await services.web_sessions.end_all(session, user_id)
        await session.commit()
    return redirect("/admin?done=" + ("activated" if active == "true" else "deactivated"))
