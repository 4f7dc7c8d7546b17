"""Pages for accounts: sign up, sign in, sign out, change password."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from wasmwiz.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from wasmwiz.errors import InvalidRequest, WasmWizError
from wasmwiz.http_common.dependencies import (
    AccountsDep,
    DatabaseDep,
    LoginThrottleDep,
    SignupThrottleDep,
    WebSessionsDep,
)
from wasmwiz.http_common.unit_of_work import DatabaseSessionDep
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.web_sessions import WebSessionService
from wasmwiz.web.rendering import WebRoute, redirect, render, safe_next
from wasmwiz.web.viewer import Viewer, ViewerDep, clear_session_cookie, set_session_cookie

router = APIRouter(route_class=WebRoute, include_in_schema=False)

PASSWORD_RULES = {"min": MIN_PASSWORD_LENGTH, "max": MAX_PASSWORD_LENGTH}


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _signed_in(
    request: Request,
    web_sessions: WebSessionService,
    session: AsyncSession,
    viewer: Viewer,
    user_id: uuid.UUID,
    target: str,
) -> Response:
    started = await web_sessions.start(session, user_id)
    # A session from before signing in is not carried over (session fixation).
    await web_sessions.end(session, viewer.session_token)
    response = redirect(target)
    max_age = int(web_sessions.lifetime.total_seconds())
    set_session_cookie(request, response, started.token, max_age)
    return response


def _refused(
    request: Request, viewer: Viewer, template: str, context: dict[str, Any], exc: WasmWizError
) -> Response:
    response = render(request, viewer, template, context, status_code=exc.status_code)
    if exc.retry_after is not None:
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


@router.get("/signup")
async def signup_page(request: Request, viewer: ViewerDep, accounts: AccountsDep) -> Response:
    if viewer.signed_in:
        return redirect("/")
    context = {"rules": PASSWORD_RULES, "mode": accounts.signup_mode.value}
    return render(request, viewer, "signup.html", context)


@router.post("/signup")
async def signup(
    request: Request,
    viewer: ViewerDep,
    accounts: AccountsDep,
    throttle: SignupThrottleDep,
    web_sessions: WebSessionsDep,
    database: DatabaseDep,
    session: DatabaseSessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    confirm: Annotated[str, Form(max_length=1024)] = "",
    invite: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    try:
        # Throttled before anything else: every try costs the network its budget.
        await throttle.attempt(_client_ip(request))
        if password != confirm:
            raise InvalidRequest("The two passwords differ.", code=ProblemCode.PASSWORDS_DIFFER)
        # Transactions of its own around the password hash (services/accounts.py); the
        # request's unit of work then holds only the new web session.
        user = await accounts.sign_up(database, email, password, invite=invite)
    except WasmWizError as exc:
        context = {
            "rules": PASSWORD_RULES,
            "mode": accounts.signup_mode.value,
            "error": exc.message,
            "email": email,
            "invite": invite,
        }
        return _refused(request, viewer, "signup.html", context, exc)
    return await _signed_in(request, web_sessions, session, viewer, user.id, "/")


@router.get("/login")
async def login_page(request: Request, viewer: ViewerDep, next: str = "/") -> Response:
    if viewer.signed_in:
        return redirect(safe_next(next))
    return render(request, viewer, "login.html", {"next": safe_next(next)})


@router.post("/login")
async def login(
    request: Request,
    viewer: ViewerDep,
    accounts: AccountsDep,
    throttle: LoginThrottleDep,
    web_sessions: WebSessionsDep,
    database: DatabaseDep,
    session: DatabaseSessionDep,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    next: Annotated[str, Form(max_length=2048)] = "/",
) -> Response:
    try:
        await throttle.attempt(email, _client_ip(request))
        user = await accounts.sign_in(database, email, password)
    except WasmWizError as exc:
        context = {"error": exc.message, "email": email, "next": safe_next(next)}
        return _refused(request, viewer, "login.html", context, exc)
    return await _signed_in(request, web_sessions, session, viewer, user.id, safe_next(next))


@router.post("/logout")
async def logout(
    request: Request, viewer: ViewerDep, web_sessions: WebSessionsDep, session: DatabaseSessionDep
) -> Response:
    await web_sessions.end(session, viewer.session_token)
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
    accounts: AccountsDep,
    web_sessions: WebSessionsDep,
    database: DatabaseDep,
    session: DatabaseSessionDep,
    current: Annotated[str, Form(max_length=1024)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    confirm: Annotated[str, Form(max_length=1024)] = "",
) -> Response:
    user = viewer.require_user()
    context: dict[str, object] = {"rules": PASSWORD_RULES}
    try:
        if password != confirm:
            raise InvalidRequest("The two new passwords differ.", code=ProblemCode.PASSWORDS_DIFFER)
        # Checked and hashed before the unit of work's first statement: its transaction
        # (SQLite's write lock) is held only for the two writes below.
        change = await accounts.check_password_change(database, user.id, current, password)
        await accounts.apply_password_change(session, change)
        assert viewer.session_token is not None
        # Whoever else knew the old password is signed out; this browser stays in.
        await web_sessions.end_others(session, user.id, viewer.session_token)
    except WasmWizError as exc:
        context["error"] = exc.message
        return _refused(request, viewer, "account.html", context, exc)
    context["notice"] = "Your password is changed. Other browsers signed in as you are signed out."
    return render(request, viewer, "account.html", context)
