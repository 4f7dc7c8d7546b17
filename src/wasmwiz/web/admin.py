"""The admin page: tiers (create, edit) and users (change tier, deactivate, delete)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from wasmwiz.errors import InvalidRequest, PermissionDenied
from wasmwiz.http_common.dependencies import AdminDep
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep
from wasmwiz.persistence.models import User
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.admin import tier_limit_fields
from wasmwiz.web.rendering import WebRoute, redirect, render
from wasmwiz.web.viewer import Viewer, ViewerDep

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PER_PAGE = 25


def _require_admin(viewer: Viewer) -> User:
    user = viewer.require_user()
    if not user.is_admin:
        raise PermissionDenied("Only administrators can see this page.", code=ProblemCode.FORBIDDEN)
    return user


@router.get("/admin")
async def admin_page(
    request: Request,
    viewer: ViewerDep,
    admin_service: AdminDep,
    session: DatabaseSessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    _require_admin(viewer)
    users = await admin_service.list_users(session, page=page, per_page=PER_PAGE)
    tiers = await admin_service.list_tiers(session)
    context = {
        "users": users,
        "tiers": tiers,
        "limit_fields": list(tier_limit_fields().items()),
        "notice": request.query_params.get("done"),
    }
    return render(request, viewer, "admin.html", context)


@router.post("/admin/users/{user_id}/tier")
async def change_tier(
    request: Request,
    user_id: uuid.UUID,
    viewer: ViewerDep,
    admin_service: AdminDep,
    session: DatabaseSessionDep,
    tier: Annotated[str, Form(max_length=32)] = "",
) -> Response:
    _require_admin(viewer)
    await admin_service.set_tier(session, user_id, tier)
    return redirect("/admin?done=tier")


@router.post("/admin/users/{user_id}/active")
async def change_active(
    request: Request,
    user_id: uuid.UUID,
    viewer: ViewerDep,
    admin_service: AdminDep,
    session: DatabaseSessionDep,
    active: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    admin = _require_admin(viewer)
    # A deactivated user is signed out everywhere at once.
    await admin_service.set_active(session, user_id, active == "true", acting=admin.id)
    return redirect("/admin?done=" + ("activated" if active == "true" else "deactivated"))


@router.post("/admin/users/{user_id}/delete")
async def delete_user(
    request: Request,
    user_id: uuid.UUID,
    viewer: ViewerDep,
    admin_service: AdminDep,
    session: DatabaseSessionDep,
) -> Response:
    admin = _require_admin(viewer)
    await admin_service.delete_user(session, user_id, acting=admin.id)
    return redirect("/admin?done=deleted")


@router.post("/admin/tiers")
async def create_tier(
    request: Request, viewer: ViewerDep, admin_service: AdminDep, session: DatabaseSessionDep
) -> Response:
    _require_admin(viewer)
    form = await request.form()
    name = form.get("name")
    limits = _tier_limits(form)
    await admin_service.create_tier(session, name if isinstance(name, str) else "", limits)
    return redirect("/admin?done=tier_created")


@router.post("/admin/tiers/{name}")
async def update_tier(
    request: Request,
    name: str,
    viewer: ViewerDep,
    admin_service: AdminDep,
    session: DatabaseSessionDep,
) -> Response:
    _require_admin(viewer)
    limits = _tier_limits(await request.form())
    await admin_service.update_tier(session, name, limits)
    return redirect("/admin?done=tier_updated")


def _tier_limits(form: Mapping[str, object]) -> dict[str, object]:
    """The limit fields of a tier form; an empty optional limit (max_fuel) means none."""
    limits: dict[str, object] = {}
    for field, spec in tier_limit_fields().items():
        raw = form.get(field)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            if spec.nullable:
                limits[field] = None
            continue
        try:
            limits[field] = spec.kind(text)
        except ValueError:
            raise InvalidRequest(
                f"{field} must be a number.", code=ProblemCode.INVALID_TIER
            ) from None
    return limits
