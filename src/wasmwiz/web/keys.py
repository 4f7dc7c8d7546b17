"""Pages for API keys: list, create (shown once) with scopes and limits, revoke one, some or all."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote, unquote

from fastapi import APIRouter, Form, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from wasmwiz.errors import InvalidRequest, WasmWizError
from wasmwiz.http_common.dependencies import ApiKeysDep
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.api_keys import ApiKeyService
from wasmwiz.services.key_listing import list_key_page
from wasmwiz.services.principals import DEFAULT_KEY_SCOPES, KeyLimits, Scope, parse_scopes
from wasmwiz.web.rendering import WebRoute, redirect, render
from wasmwiz.web.viewer import Viewer, ViewerDep, is_https

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PER_PAGE = 10
NEW_KEY_COOKIE = "wasmwiz_new_key"
NEW_KEY_COOKIE_SECONDS = 120
EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days")]


async def _page(
    request: Request,
    viewer: Viewer,
    api_keys: ApiKeyService,
    session: AsyncSession,
    page: int,
    *,
    extra: Mapping[str, object] | None = None,
    status_code: int = 200,
) -> Response:
    user = viewer.require_user()
    keys = await list_key_page(api_keys, session, user.id, page=page, per_page=PER_PAGE)
    choosable = [scope for scope in Scope if scope is not Scope.ADMIN or user.is_admin]
    context = {
        "keys": keys,
        "expiry_choices": EXPIRY_CHOICES,
        "scope_choices": choosable,
        "default_scopes": DEFAULT_KEY_SCOPES,
        "tier": user.tier,
        **(extra or {}),
    }
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
    api_keys: ApiKeysDep,
    session: DatabaseSessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
) -> Response:
    shown = request.cookies.get(NEW_KEY_COOKIE)
    if not shown:
        return await _page(request, viewer, api_keys, session, page)
    plaintext, _, name = shown.partition(":")
    created = _ShownKey(key=_ShownName(unquote(name)), plaintext=plaintext)
    response = await _page(request, viewer, api_keys, session, 1, extra={"created": created})
    response.delete_cookie(NEW_KEY_COOKIE, path="/api-keys")
    return response


@router.post("/generate-key")
async def generate_key(
    request: Request,
    viewer: ViewerDep,
    api_keys: ApiKeysDep,
    session: DatabaseSessionDep,
    name: Annotated[str, Form(max_length=200)] = "",
    expires_in_days: Annotated[str, Form(max_length=8)] = "",
    scopes: Annotated[list[str] | None, Form(max_length=40)] = None,
    requests_per_minute: Annotated[str, Form(max_length=12)] = "",
    requests_per_day: Annotated[str, Form(max_length=12)] = "",
    max_concurrent_executions: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    user = viewer.require_user()
    try:
        expires_at = _expiry(expires_in_days)
        # No box ticked (or a form without them): the default scopes.
        chosen = parse_scopes(scopes or []) or DEFAULT_KEY_SCOPES
        limits = KeyLimits(
            requests_per_minute=_own_limit(requests_per_minute),
            requests_per_day=_own_limit(requests_per_day),
            max_concurrent_executions=_own_limit(max_concurrent_executions),
        )
        created = await api_keys.create(
            session, user.id, name=name, expires_at=expires_at, scopes=chosen, limits=limits
        )
    except WasmWizError as exc:
        # The refused transaction ends here: the page lists the keys in a new one, and
        # the route rolls that back too (the page's status is the refusal's).
        await session.rollback()
        extra = {"error": exc.message, "name": name}
        return await _page(
            request, viewer, api_keys, session, 1, extra=extra, status_code=exc.status_code
        )
    if "text/html" not in request.headers.get("accept", ""):
        # A script's form post: the page is the response itself, as it always was.
        return await _page(request, viewer, api_keys, session, 1, extra={"created": created})
    # A browser gets post/redirect/get, so a reload cannot create a second key. The key
    # rides to the one GET that shows it in a cookie for that page only: HttpOnly,
    # short-lived, deleted by that GET. The server still keeps only its hash.
    response = redirect("/api-keys?created=1")
    response.set_cookie(
        NEW_KEY_COOKIE,
        f"{created.plaintext}:{quote(created.key.name)}",
        max_age=NEW_KEY_COOKIE_SECONDS,
        path="/api-keys",
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True, slots=True)
class _ShownName:
    name: str


@dataclass(frozen=True, slots=True)
class _ShownKey:
    key: _ShownName
    plaintext: str


@router.post("/api-keys/{key_id}/revoke")
async def revoke_key(
    request: Request,
    key_id: uuid.UUID,
    viewer: ViewerDep,
    api_keys: ApiKeysDep,
    session: DatabaseSessionDep,
) -> Response:
    user = viewer.require_user()
    revoked = await api_keys.revoke(session, key_id, user_id=user.id)
    # A second click (or a stale tab) on a revoked key says so instead of "revoked".
    return redirect("/api-keys?revoked=" + ("1" if revoked else "already"))


@router.post("/api-keys/revoke-selected")
async def revoke_selected_keys(
    request: Request,
    viewer: ViewerDep,
    api_keys: ApiKeysDep,
    session: DatabaseSessionDep,
    ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The boxes ticked in the list: all of them revoked, or (a stale tab's key that is
    gone) none, with the page saying why."""
    user = viewer.require_user()
    try:
        key_ids = [_key_id(value) for value in ids or []]
        if not key_ids:
            raise InvalidRequest("Tick the keys to revoke first.")
        items = await api_keys.revoke_many(session, user.id, key_ids)
    except WasmWizError as exc:
        await session.rollback()
        return await _page(
            request,
            viewer,
            api_keys,
            session,
            1,
            extra={"list_error": exc.message},
            status_code=exc.status_code,
        )
    return redirect(f"/api-keys?revoked=selected&count={sum(item.changed for item in items)}")


@router.post("/api-keys/revoke-all")
async def revoke_all_keys(
    request: Request, viewer: ViewerDep, api_keys: ApiKeysDep, session: DatabaseSessionDep
) -> Response:
    user = viewer.require_user()
    await api_keys.revoke_all(session, user.id)
    return redirect("/api-keys?revoked=all")


def _key_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidRequest("That is not a key of this page.") from None


def _own_limit(value: str) -> int | None:
    value = value.strip()
    if not value:
        return None
    if not value.isdigit() or len(value) > 9:
        raise InvalidRequest(
            "A key's own limit is a whole number.", code=ProblemCode.INVALID_KEY_LIMIT
        )
    return int(value)


def _expiry(days: str) -> datetime | None:
    if not days:
        return None
    if not days.isdigit() or not 1 <= int(days) <= 3650:
        raise InvalidRequest(
            "Choose an expiry between 1 and 3650 days.", code=ProblemCode.INVALID_EXPIRY
        )
    return datetime.now(UTC) + timedelta(days=int(days))
