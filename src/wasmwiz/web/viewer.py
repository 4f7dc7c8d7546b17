"""Who is looking at a page: the signed-in user (if any), their cookies and CSRF token."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.responses import Response

from wasmwiz.auth import check_csrf_token, csrf_token, generate_session_token
from wasmwiz.errors import PermissionDenied
from wasmwiz.http_common.app_state import app_state
from wasmwiz.http_common.unit_of_work import UNSAFE_METHODS
from wasmwiz.persistence.models import User
from wasmwiz.problem_codes import ProblemCode
from wasmwiz.services.api_keys import tier_limits
from wasmwiz.services.principals import Principal

SESSION_COOKIE = "wasmwiz_session"
# Before signing in, a browser gets a random cookie that its CSRF token is bound to, so
# the sign-up and sign-in forms are protected too (against login CSRF).
PRESESSION_COOKIE = "wasmwiz_presession"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
_PRESESSION_SECONDS = 60 * 60 * 24

security_log = logging.getLogger("wasmwiz.security")


class LoginRequired(Exception):
    """The page needs an account; the visitor is sent to /login."""


@dataclass(slots=True)
class Viewer:
    user: User | None
    session_token: str | None
    presession: str
    new_presession: bool
    csrf: str

    @property
    def signed_in(self) -> bool:
        return self.user is not None

    def require_user(self) -> User:
        if self.user is None:
            raise LoginRequired
        return self.user

    def principal(self) -> Principal:
        """The signed-in user as an execution principal: no key, so limits are per user."""
        user = self.require_user()
        return Principal(
            user_id=user.id, email=user.email, tier=tier_limits(user.tier), api_key_id=None
        )


async def get_viewer(request: Request) -> Viewer:
    state = app_state(request)
    token = request.cookies.get(SESSION_COOKIE)
    user = None
    if token:
        # A read of its own, not the request's unit of work: error pages resolve the
        # viewer outside any route, and in a POST's unit of work (a writer) this read
        # would take SQLite's write lock before the handler's password hashing, and
        # begin the transaction a key's creation limit must be spent before.
        async with state.database.session() as session:
            user = await state.web_sessions.resolve(session, token)
    presession = request.cookies.get(PRESESSION_COOKIE, "")
    new_presession = not presession
    if new_presession:
        presession = generate_session_token()
    basis = token if user is not None and token else presession
    return Viewer(
        user=user,
        session_token=token if user is not None else None,
        presession=presession,
        new_presession=new_presession,
        csrf=csrf_token(basis, state.settings.secret_key),
    )


ViewerDep = Annotated[Viewer, Depends(get_viewer)]


async def enforce_csrf(request: Request, viewer: ViewerDep) -> None:
    """Every page route's dependency (`install_web` adds it to each router): a request with
    an unsafe method is refused unless its CSRF token is right, before the route runs. In
    one place, so a new route cannot forget it."""
    if request.method not in UNSAFE_METHODS:
        return
    try:
        await _check_csrf(request, viewer, app_state(request).settings.secret_key)
    except PermissionDenied:
        if request.cookies.get(SESSION_COOKIE) and viewer.user is None:
            # The page's token was made for a session that has since ended: what the
            # visitor needs to hear is "sign in again" (401, or the sign-in page).
            raise LoginRequired from None
        raise


# Signing out only takes access away, and must work for a user over the budget (on a shared
# computer above all); once the session has ended, a repeat is a visitor's and spends
# nothing either way.
UNMETERED_PAGE_PATHS = frozenset({"/logout"})


async def spend_signed_in_request(request: Request, viewer: ViewerDep) -> None:
    """Every page route's dependency, after enforce_csrf: a signed-in user's request spends
    one of the account's request budget (ApiRequestLimit), as a call with one of its keys
    does, before the route reads anything; a page reload is no cheaper for the database
    than an API call. A visitor not signed in spends nothing: signing up and signing in
    have their own throttles. Nor does signing out (UNMETERED_PAGE_PATHS)."""
    if viewer.user is not None and request.url.path not in UNMETERED_PAGE_PATHS:
        await app_state(request).api_requests.spend_for(
            viewer.user.id, tier_limits(viewer.user.tier)
        )


async def _check_csrf(request: Request, viewer: Viewer, secret_key: str) -> None:
    """Refuse a state-changing request whose CSRF token (form field or header) is wrong."""
    candidate = request.headers.get(CSRF_HEADER)
    if candidate is None and request.headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        candidate = value if isinstance(value, str) else None
    basis = viewer.session_token or viewer.presession
    if not check_csrf_token(basis, candidate, secret_key):
        security_log.warning(
            "CSRF check failed",
            extra={
                "event": "csrf_failure",
                "path": request.url.path,
                "user_id": str(viewer.user.id) if viewer.user else None,
                "token_sent": candidate is not None,
            },
        )
        raise PermissionDenied(
            "The form's security token is missing or out of date. Reload the page and try again.",
            code=ProblemCode.CSRF_FAILED,
        )


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    # HttpOnly: page scripts never need it. SameSite=Lax: not sent on cross-site POSTs.
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        samesite="lax",
        secure=is_https(request),
        path="/",
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        SESSION_COOKIE, httponly=True, samesite="lax", secure=is_https(request), path="/"
    )


def set_presession_cookie(request: Request, response: Response, viewer: Viewer) -> None:
    if viewer.new_presession:
        response.set_cookie(
            PRESESSION_COOKIE,
            viewer.presession,
            max_age=_PRESESSION_SECONDS,
            httponly=True,
            samesite="lax",
            secure=is_https(request),
            path="/",
        )
