"""Pages for accounts: sign up, sign in, sign out, change password."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from wasmwiz.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from wasmwiz.errors import InvalidRequest, WasmWizError
from wasmwiz.services.container import Services
from wasmwiz.web.rendering import WebRoute, redirect, render, safe_next
from wasmwiz.web.viewer import (
    ServicesDep,
    Viewer,
    ViewerDep,
    clear_session_cookie,
    require_csrf,
    set_session_cookie,
)

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PASSWORD_RULES = {"min": MIN_PASSWORD_LENGTH, "max": MAX_PASSWORD_LENGTH}


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _signed_in(
    request: Request, services: Services, viewer: Viewer, user_id: uuid.UUID, target: str
) -> Response:
    async with services.database.session() as session:
        started = await services.web_sessions.start(session, user_id)
        # A session from before signing in is not carried over (session fixation).
        await services.web_sessions.end(session, viewer.session_token)
        await session.commit()
    response = redirect(target)
    max_age = int(services.web_sessions.lifetime.total_seconds())
    set_session_cookie(request, response, started.token, max_age)
    return response


@router.get("/signup")
async def signup_page(request: Request, viewer: ViewerDep) -> Response:
    if viewer.signed_in:
        return redirect("/")
    return render(request, viewer, "signup.html", {"rules": PASSWORD_RULES})


@router.post("/signup")
async def signup(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    confirm: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    await require_csrf(request, viewer, services)
    try:
        if password != confirm:
            raise InvalidRequest("The two passwords differ.", code="passwords_differ")
        async with services.database.session() as session:
            user = await services.accounts.sign_up(session, email, password)
            await session.commit()
    except WasmWizError as exc:
        context = {"rules": PASSWORD_RULES, "error": exc.message, "email": email}
        return render(request, viewer, "signup.html", context, status_code=exc.status_code)
    return await _signed_in(request, services, viewer, user.id, "/")


@router.get("/login")
async def login_page(request: Request, viewer: ViewerDep, next: str = "/") -> Response:
    if viewer.signed_in:
        return redirect(safe_next(next))
    return render(request, viewer, "login.html", {"next": safe_next(next)})


@router.post("/login")
async def login(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    await require_csrf(request, viewer, services)
    try:
        await services.login_throttle.attempt(email, _client_ip(request))
        async with services.database.session() as session:
            user = await services.accounts.check_password(session, email, password)
            await session.commit()
    except WasmWizError as exc:
        context = {"error": exc.message, "email": email, "next": safe_next(next)}
        response = render(request, viewer, "login.html", context, status_code=exc.status_code)
        if exc.retry_after is not None:
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    return await _signed_in(request, services, viewer, user.id, safe_next(next))


@router.post("/logout")
async def logout(request: Request, viewer: ViewerDep, services: ServicesDep) -> Response:
    await require_csrf(request, viewer, services)
    async with services.database.session() as session:
        await services.web_sessions.end(session, viewer.session_token)
        await session.commit()
    response = redirect("/login")
    clear_session_cookie(request, response)
    return response


@router.get("/account")
async def account_page(request: Request, viewer: ViewerDep) -> Response:
    viewer.require_user()
    return render(request, viewer, "account.html", {"rules": PASSWORD_RULES})


@router.post("/account/password")
async def change_password(
    request: Request,
    viewer: ViewerDep,
    services: ServicesDep,
    current: Annotated[str, Form(max_length=1024)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    confirm: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    user = viewer.require_user()
    await require_csrf(request, viewer, services)
    context: dict[str, object] = {"rules": PASSWORD_RULES}
    try:
        if password != confirm:
            raise InvalidRequest("The two new passwords differ.", code="passwords_differ")
        async with services.database.session() as session:
            await services.accounts.change_password(session, user.id, current, password)
            assert viewer.session_token is not None
            # Whoever else knew the old password is signed out; this browser stays in.
            await services.web_sessions.end_others(session, user.id, viewer.session_token)
            await session.commit()
    except WasmWizError as exc:
        context["error"] = exc.message
        return render(request, viewer, "account.html", context, status_code=exc.status_code)
    context["notice"] = "Your password is changed. Other browsers signed in as you are signed out."
    return render(request, viewer, "account.html", context)
