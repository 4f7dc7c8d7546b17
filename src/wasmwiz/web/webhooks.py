"""Pages for webhooks: endpoints (add, enable or disable, rotate the secret, delete), each
one's delivery log with redelivery, the notice of one disabled for failing, and the
callback secret of jobs' `callback_url`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from wasmwiz.errors import WasmWizError
from wasmwiz.http_common.dependencies import WebhooksDep
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep
from wasmwiz.services.webhooks import EventType, WebhookService
from wasmwiz.web.rendering import WebRoute, redirect, render
from wasmwiz.web.viewer import Viewer, ViewerDep

router = APIRouter(route_class=WebRoute, include_in_schema=False)

# More would not fit a page; the API pages through them all.
SHOWN = 100
DEFAULT_EVENTS = (EventType.JOB_FINISHED, EventType.JOB_FAILED)


async def _list_page(
    request: Request,
    viewer: Viewer,
    webhooks: WebhookService,
    session: AsyncSession,
    *,
    extra: Mapping[str, object] | None = None,
    status_code: int = 200,
) -> Response:
    user = viewer.require_user()
    page = await webhooks.list_endpoints(session, user.id, limit=SHOWN, cursor=None)
    context = {
        "endpoints": page.endpoints,
        "event_choices": list(EventType),
        "default_events": DEFAULT_EVENTS,
        "max_endpoints": webhooks.max_endpoints,
        **(extra or {}),
    }
    shows_secret = bool(extra and ("created" in extra or "callback_secret" in extra))
    return render(
        request,
        viewer,
        "webhooks.html",
        context,
        status_code=status_code,
        no_store=shows_secret,
    )


async def _detail_page(
    request: Request,
    viewer: Viewer,
    webhooks: WebhookService,
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    extra: Mapping[str, object] | None = None,
) -> Response:
    user = viewer.require_user()
    endpoint = await webhooks.get_endpoint(session, user.id, endpoint_id)
    log = await webhooks.list_deliveries(session, user.id, endpoint_id, limit=SHOWN, cursor=None)
    context = {"endpoint": endpoint, "deliveries": log.deliveries, **(extra or {})}
    return render(
        request,
        viewer,
        "webhook.html",
        context,
        no_store=bool(extra and "secret" in extra),
    )


@router.get("/webhooks")
async def webhooks_page(
    request: Request, viewer: ViewerDep, webhooks: WebhooksDep, session: DatabaseSessionDep
) -> Response:
    return await _list_page(request, viewer, webhooks, session)


@router.post("/webhooks")
async def add_webhook(
    request: Request,
    viewer: ViewerDep,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
    url: Annotated[str, Form(max_length=4096)] = "",
    events: Annotated[list[str] | None, Form(max_length=20)] = None,
    description: Annotated[str, Form(max_length=400)] = "",
) -> Response:
    user = viewer.require_user()
    try:
        created = await webhooks.create_endpoint(
            session, user.id, url=url.strip(), events=events or [], description=description
        )
    except WasmWizError as exc:
        await session.rollback()
        extra = {"error": exc.message, "url": url, "description": description}
        return await _list_page(
            request, viewer, webhooks, session, extra=extra, status_code=exc.status_code
        )
    # Shown in this response, not after a redirect: the secret is never kept to show again.
    return await _list_page(request, viewer, webhooks, session, extra={"created": created})


@router.post("/webhooks/callback-secret/rotate")
async def rotate_callback_secret(
    request: Request, viewer: ViewerDep, webhooks: WebhooksDep, session: DatabaseSessionDep
) -> Response:
    user = viewer.require_user()
    secret = await webhooks.rotate_callback_secret(session, user.id)
    return await _list_page(request, viewer, webhooks, session, extra={"callback_secret": secret})


@router.get("/webhooks/{endpoint_id}")
async def webhook_page(
    request: Request,
    endpoint_id: uuid.UUID,
    viewer: ViewerDep,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
) -> Response:
    return await _detail_page(request, viewer, webhooks, session, endpoint_id)


@router.post("/webhooks/{endpoint_id}/enable")
async def enable_webhook(
    endpoint_id: uuid.UUID, viewer: ViewerDep, webhooks: WebhooksDep, session: DatabaseSessionDep
) -> Response:
    user = viewer.require_user()
    await webhooks.update_endpoint(session, user.id, endpoint_id, enabled=True)
    return redirect(f"/webhooks/{endpoint_id}?changed=enabled")


@router.post("/webhooks/{endpoint_id}/disable")
async def disable_webhook(
    endpoint_id: uuid.UUID, viewer: ViewerDep, webhooks: WebhooksDep, session: DatabaseSessionDep
) -> Response:
    user = viewer.require_user()
    await webhooks.update_endpoint(session, user.id, endpoint_id, enabled=False)
    return redirect(f"/webhooks/{endpoint_id}?changed=disabled")


@router.post("/webhooks/{endpoint_id}/rotate-secret")
async def rotate_webhook_secret(
    request: Request,
    endpoint_id: uuid.UUID,
    viewer: ViewerDep,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
) -> Response:
    user = viewer.require_user()
    secret = await webhooks.rotate_secret(session, user.id, endpoint_id)
    return await _detail_page(
        request, viewer, webhooks, session, endpoint_id, extra={"secret": secret}
    )


@router.post("/webhooks/{endpoint_id}/delete")
async def delete_webhook(
    endpoint_id: uuid.UUID, viewer: ViewerDep, webhooks: WebhooksDep, session: DatabaseSessionDep
) -> Response:
    user = viewer.require_user()
    await webhooks.delete_endpoint(session, user.id, endpoint_id)
    return redirect("/webhooks?deleted=1")


@router.post("/webhooks/{endpoint_id}/deliveries/{delivery_id}/redeliver")
async def redeliver(
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    viewer: ViewerDep,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
) -> Response:
    user = viewer.require_user()
    await webhooks.redeliver(session, user.id, endpoint_id, delivery_id)
    return redirect(f"/webhooks/{endpoint_id}?changed=redelivered")
