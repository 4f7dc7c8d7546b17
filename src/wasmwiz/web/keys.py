"""Pages for API keys: list, create (shown once), revoke."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from starlette.responses import Response

from wasmwiz.errors import InvalidRequest, WasmWizError
from wasmwiz.services.container import Services
from wasmwiz.services.key_listing import list_key_page
from wasmwiz.web.rendering import WebRoute, redirect, render
from wasmwiz.web.viewer import ServicesDep, Viewer, ViewerDep, require_csrf

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PER_PAGE = 10
EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days")]


async def _page(
    request: Request,
    viewer: Viewer,
    services: Services,
    page: int,
    *,
    extra: Mapping[str, object] | None = None,
    status_code: int = 200,
) -> Response:
    user = viewer.require_user()
    async with services.database.session() as session:
        keys = await list_key_page(
            services.api_keys, session, user.id, page=page, per_page=PER_PAGE
        )
    context = {"keys": keys, "expiry_choices": EXPIRY_CHOICES, **(extra or {})}
    return render(
        request,
        viewer,
        "keys.html",
        context,
        status_code=status_code,
        no_store=bool(extra and "created" in extra),
    )


@router.get("/api-keys")
async def keys_page(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    return await _page(request, viewer, services, page)


@router.post("/generate-key")
async def generate_key(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    name: Annotated[str, Form(max_length=200)] = "",
    expires_in_days: Annotated[str, Form(max_length=8)] = "",
) -> Response:
    user = viewer.require_user()
    await require_csrf(request, viewer, services)
    try:
        expires_at = _expiry(expires_in_days)
        async with services.database.session() as session:
            created = await services.api_keys.create(
                session, user.id, name=name, expires_at=expires_at
            )
            await session.commit()
    except WasmWizError as exc:
        extra = {"error": exc.message, "name": name}
        return await _page(request, viewer, services, 1, extra=extra, status_code=exc.status_code)
    # The page is the response to the POST itself, never a redirect: the key is shown
    # this once and is not stored anywhere it could be shown again.
    return await _page(request, viewer, services, 1, extra={"created": created})


@router.post("/api-keys/{key_id}/revoke")
async def revoke_key(
    request: Request, key_id: uuid.UUID, viewer: ViewerDep, services: ServicesDep
) -> Response:
    user = viewer.require_user()
    await require_csrf(request, viewer, services)
    async with services.database.session() as session:
        await services.api_keys.revoke(session, key_id, user_id=user.id)
        await session.commit()
    return redirect("/api-keys?revoked=1")


def _expiry(days: str) -> datetime | None:
    if not days:
        return None
    if not days.isdigit() or not 1 <= int(days) <= 3650:
        raise InvalidRequest("Choose an expiry between 1 and 3650 days.", code="invalid_expiry")
    return datetime.now(UTC) + timedelta(days=int(days))
