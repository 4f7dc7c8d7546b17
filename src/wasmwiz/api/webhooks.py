"""/api/v1/webhooks: the account's webhook endpoints and their delivery logs; `keys:write`.

Webhooks manage the account, as keys do, so they take the scope that manages keys rather
than one of their own (docs/webhooks.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from wasmwiz.api.dependencies import KeysWriter
from wasmwiz.api.openapi import problem_responses
from wasmwiz.http_common.dependencies import WebhooksDep
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep, UnitOfWorkRoute
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.webhooks import DeliveryView, EndpointView, EventType
from wasmwiz.services.webhooks.service import MAX_DESCRIPTION_LENGTH, MAX_PAGE_SIZE

router = APIRouter(tags=["webhooks"], route_class=UnitOfWorkRoute)

_ID = Path(description="The endpoint's id.")
_EVENTS = "Event types: " + ", ".join(f"`{event.value}`" for event in EventType) + "."
_INSTANCE = "/api/v1/webhooks"
_NOT_FOUND = problem_responses(ProblemCode.WEBHOOK_NOT_FOUND, instance=_INSTANCE + "/{id}")
_NO_STORE = {"Cache-Control": "no-store"}


class WebhookEndpointOut(BaseModel):
    id: uuid.UUID
    url: str
    description: str | None
    events: list[str] = Field(description=_EVENTS)
    enabled: bool
    created_at: datetime
    consecutive_failures: int = Field(
        description="Deliveries in a row that failed every attempt; a success resets it."
    )
    disabled_at: datetime | None = Field(
        description="When the service disabled the endpoint for failing (null otherwise)."
    )
    disabled_reason: str | None

    @classmethod
    def of(cls, view: EndpointView) -> WebhookEndpointOut:
        return cls(
            id=view.id,
            url=view.url,
            description=view.description,
            events=[event.value for event in view.events],
            enabled=view.enabled,
            created_at=view.created_at,
            consecutive_failures=view.consecutive_failures,
            disabled_at=view.disabled_at,
            disabled_reason=view.disabled_reason,
        )


class WebhookEndpointWithSecret(WebhookEndpointOut):
    secret: str = Field(
        description="The signing secret (`whsec_…`), shown only on creation and rotation."
    )


class WebhookEndpointPage(BaseModel):
    items: list[WebhookEndpointOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last."
    )


class WebhookEndpointCreate(BaseModel):
    url: str = Field(
        max_length=4096,
        description="An http(s) URL whose host resolves to public addresses only.",
        examples=["https://hooks.example.com/wasmwiz"],
    )
    events: list[str] = Field(max_length=len(EventType), description=_EVENTS)
    enabled: bool = True
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)


class WebhookEndpointUpdate(BaseModel):
    url: str | None = Field(default=None, max_length=4096)
    events: list[str] | None = Field(default=None, max_length=len(EventType))
    enabled: bool | None = Field(
        default=None, description="Enabling a disabled endpoint clears its failures."
    )
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)


class WebhookDeliveryOut(BaseModel):
    id: uuid.UUID
    event_id: uuid.UUID = Field(description="Sent as `webhook-id` (`msg_` and its hex).")
    event_type: str
    state: str = Field(description="`pending`, `delivering`, `succeeded` or `failed`.")
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None = Field(description="When a pending one is tried next.")
    last_attempt_at: datetime | None
    last_status: int | None = Field(description="The receiver's last HTTP status.")
    last_error: str | None

    @classmethod
    def of(cls, view: DeliveryView) -> WebhookDeliveryOut:
        return cls(
            id=view.id,
            event_id=view.event_id,
            event_type=view.event_type,
            state=view.state,
            attempts=view.attempts,
            created_at=view.created_at,
            next_attempt_at=view.next_attempt_at,
            last_attempt_at=view.last_attempt_at,
            last_status=view.last_status,
            last_error=view.last_error,
        )


class WebhookDeliveryPage(BaseModel):
    items: list[WebhookDeliveryOut]
    next_cursor: str | None


class CallbackSecret(BaseModel):
    secret: str = Field(description="Signs the deliveries to your jobs' `callback_url`.")


@router.post(
    "/api/v1/webhooks",
    summary="Add a webhook endpoint",
    description="The URL is resolved now, and again at each delivery; an address on a "
    "private network is refused. The secret that signs the deliveries is in this "
    "response only. An account has at most WEBHOOK_MAX_ENDPOINTS endpoints (10 by "
    "default). Needs the `keys:write` scope.",
    status_code=201,
    response_model=WebhookEndpointWithSecret,
    responses=problem_responses(
        ProblemCode.WEBHOOK_URL_REFUSED,
        ProblemCode.INVALID_WEBHOOK_EVENTS,
        ProblemCode.TOO_MANY_WEBHOOKS,
        instance=_INSTANCE,
    ),
)
async def create_webhook(
    body: WebhookEndpointCreate,
    principal: KeysWriter,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
    response: Response,
) -> WebhookEndpointWithSecret:
    created = await webhooks.create_endpoint(
        session,
        principal.user_id,
        url=body.url,
        events=body.events,
        enabled=body.enabled,
        description=body.description,
    )
    response.headers.update(_NO_STORE)
    out = WebhookEndpointOut.of(created.endpoint)
    return WebhookEndpointWithSecret(**out.model_dump(), secret=created.secret)


@router.get(
    "/api/v1/webhooks",
    summary="List your webhook endpoints",
    description="Newest first, a page at a time (`cursor` from the previous page).",
    response_model=WebhookEndpointPage,
)
async def list_webhooks(
    principal: KeysWriter,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> WebhookEndpointPage:
    page = await webhooks.list_endpoints(session, principal.user_id, limit=limit, cursor=cursor)
    return WebhookEndpointPage(
        items=[WebhookEndpointOut.of(view) for view in page.endpoints],
        next_cursor=page.next_cursor,
    )


@router.get(
    "/api/v1/webhooks/callback-secret",
    summary="Show your callback secret",
    description="The secret that signs deliveries to the `callback_url` of your jobs.",
    response_model=CallbackSecret,
)
async def get_callback_secret(
    principal: KeysWriter, webhooks: WebhooksDep, session: DatabaseSessionDep, response: Response
) -> CallbackSecret:
    response.headers.update(_NO_STORE)
    return CallbackSecret(secret=await webhooks.callback_secret(session, principal.user_id))


@router.post(
    "/api/v1/webhooks/callback-secret/rotate",
    summary="Rotate your callback secret",
    description="Callbacks are signed with the new secret from now on.",
    response_model=CallbackSecret,
)
async def rotate_callback_secret(
    principal: KeysWriter, webhooks: WebhooksDep, session: DatabaseSessionDep, response: Response
) -> CallbackSecret:
    secret = await webhooks.rotate_callback_secret(session, principal.user_id)
    response.headers.update(_NO_STORE)
    return CallbackSecret(secret=secret)


@router.get(
    "/api/v1/webhooks/{endpoint_id:uuid}",
    summary="Show a webhook endpoint",
    description="Its URL, events, whether it is enabled, and its failures so far; never its "
    "secret (shown once, when created or rotated).",
    response_model=WebhookEndpointOut,
    responses=_NOT_FOUND,
)
async def get_webhook(
    endpoint_id: Annotated[uuid.UUID, _ID],
    principal: KeysWriter,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
) -> WebhookEndpointOut:
    view = await webhooks.get_endpoint(session, principal.user_id, endpoint_id)
    return WebhookEndpointOut.of(view)


@router.patch(
    "/api/v1/webhooks/{endpoint_id:uuid}",
    summary="Change a webhook endpoint",
    description="Changes the fields given: URL, events, enabled, description (null clears it).",
    response_model=WebhookEndpointOut,
    responses=problem_responses(
        ProblemCode.WEBHOOK_URL_REFUSED,
        ProblemCode.INVALID_WEBHOOK_EVENTS,
        ProblemCode.WEBHOOK_NOT_FOUND,
        instance=_INSTANCE + "/{id}",
    ),
)
async def update_webhook(
    endpoint_id: Annotated[uuid.UUID, _ID],
    body: WebhookEndpointUpdate,
    principal: KeysWriter,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
) -> WebhookEndpointOut:
    given = body.model_fields_set
    changes = {"description": body.description} if "description" in given else {}
    view = await webhooks.update_endpoint(
        session,
        principal.user_id,
        endpoint_id,
        url=body.url,
        events=body.events,
        enabled=body.enabled,
        **changes,
    )
    return WebhookEndpointOut.of(view)


@router.delete(
    "/api/v1/webhooks/{endpoint_id:uuid}",
    summary="Delete a webhook endpoint",
    description="The endpoint and its delivery log; deliveries pending to it are dropped.",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "Deleted."}, **_NOT_FOUND},
)
async def delete_webhook(
    endpoint_id: Annotated[uuid.UUID, _ID],
    principal: KeysWriter,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
) -> None:
    await webhooks.delete_endpoint(session, principal.user_id, endpoint_id)


@router.post(
    "/api/v1/webhooks/{endpoint_id:uuid}/rotate-secret",
    summary="Rotate a webhook endpoint's secret",
    description="A new secret, in this response only; deliveries are signed with it from now on.",
    response_model=WebhookEndpointWithSecret,
    responses=_NOT_FOUND,
)
async def rotate_webhook_secret(
    endpoint_id: Annotated[uuid.UUID, _ID],
    principal: KeysWriter,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
    response: Response,
) -> WebhookEndpointWithSecret:
    secret = await webhooks.rotate_secret(session, principal.user_id, endpoint_id)
    view = await webhooks.get_endpoint(session, principal.user_id, endpoint_id)
    response.headers.update(_NO_STORE)
    return WebhookEndpointWithSecret(**WebhookEndpointOut.of(view).model_dump(), secret=secret)


@router.get(
    "/api/v1/webhooks/{endpoint_id:uuid}/deliveries",
    summary="List an endpoint's deliveries",
    description="Its delivery log, newest first: state, attempts, last status and error.",
    response_model=WebhookDeliveryPage,
    responses=_NOT_FOUND,
)
async def list_deliveries(
    endpoint_id: Annotated[uuid.UUID, _ID],
    principal: KeysWriter,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> WebhookDeliveryPage:
    page = await webhooks.list_deliveries(
        session, principal.user_id, endpoint_id, limit=limit, cursor=cursor
    )
    return WebhookDeliveryPage(
        items=[WebhookDeliveryOut.of(view) for view in page.deliveries],
        next_cursor=page.next_cursor,
    )


@router.post(
    "/api/v1/webhooks/{endpoint_id:uuid}/deliveries/{delivery_id}/redeliver",
    summary="Send a delivery's event again",
    description="A new delivery of the same event (the same `webhook-id`), sent at once.",
    status_code=202,
    response_model=WebhookDeliveryOut,
    responses=problem_responses(
        ProblemCode.WEBHOOK_NOT_FOUND,
        ProblemCode.CONFLICT,
        instance=_INSTANCE + "/{id}/deliveries/{delivery_id}/redeliver",
        details={ProblemCode.CONFLICT: "The endpoint is disabled: enable it first."},
    ),
)
async def redeliver(
    endpoint_id: Annotated[uuid.UUID, _ID],
    delivery_id: uuid.UUID,
    principal: KeysWriter,
    webhooks: WebhooksDep,
    session: DatabaseSessionDep,
) -> WebhookDeliveryOut:
    view = await webhooks.redeliver(session, principal.user_id, endpoint_id, delivery_id)
    return WebhookDeliveryOut.of(view)
