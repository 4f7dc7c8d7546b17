"""Every page route that changes state refuses a request without the right CSRF token.

The routes are found by walking the app, not listed here: a route added tomorrow is
tried too. The requests come from a signed-in administrator, so a route that did not
check the token would act (or refuse for another reason, which fails the test as well).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from tests.fixtures.app import ServerFactory
from tests.web.helpers import make_admin, new_email, sign_up
from wasmwiz.web.rendering import WebRoute
from wasmwiz.web.viewer import CSRF_FIELD, CSRF_HEADER, UNSAFE_METHODS

pytestmark = pytest.mark.anyio

# The JSON API authenticates with bearer keys, never cookies: CSRF does not apply.
API_PATHS = re.compile(r"^/(api/|execute$)")
_PARAMETER = re.compile(r"\{[^}]+\}")
WRONG_TOKEN = "0" * 64


def all_routes(routes: Iterable[object], prefix: str = "") -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with its full path. FastAPI (0.16x) keeps an included router as one
    entry of the app's routes, wrapping the router and how it was included; older releases
    copied its routes in. Both are walked; the count asserted below catches a third way."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from all_routes(included.routes, prefix + getattr(context, "prefix", ""))
        elif isinstance(route, APIRoute):
            yield prefix + route.path, route


def unsafe_routes(app: FastAPI) -> list[tuple[str, str, APIRoute]]:
    return [
        (method, path, route)
        for path, route in all_routes(app.routes)
        for method in sorted(route.methods & UNSAFE_METHODS)
    ]


def concrete(path: str) -> str:
    """The path with each parameter filled (a UUID fits both ids and names)."""
    return _PARAMETER.sub(str(uuid.uuid4()), path)


async def test_every_unsafe_page_route_refuses_a_missing_or_wrong_token(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    server = server_factory()
    app = server.server.config.app
    assert isinstance(app, FastAPI)
    routes = unsafe_routes(app)
    pages = [(method, path) for method, path, route in routes if isinstance(route, WebRoute)]
    # Every unsafe route is a page (checked here) or part of the bearer-key API.
    strays = [
        f"{method} {path}"
        for method, path, route in routes
        if not isinstance(route, WebRoute) and not API_PATHS.match(path)
    ]
    assert not strays, f"unsafe routes outside the web router and the API: {strays}"
    assert len(pages) >= 13, pages  # signup, login, logout, keys, admin forms, upload...

    async with httpx.AsyncClient(base_url=server.url, timeout=30) as admin:
        email = new_email()
        await sign_up(admin, email)
        await make_admin(migrated_database_url, email)
        attempts = {
            "no token": {"data": {"field": "x"}},
            "wrong form token": {"data": {CSRF_FIELD: WRONG_TOKEN}},
            "wrong header token": {"headers": {CSRF_HEADER: WRONG_TOKEN}},
        }
        refused = []
        for method, path in pages:
            for attempt, options in attempts.items():
                headers = {"accept": "application/json", **options.get("headers", {})}
                response = await admin.request(
                    method, concrete(path), data=options.get("data"), headers=headers
                )
                assert response.status_code == 403, (method, path, attempt, response.text)
                assert response.json()["code"] == "csrf_failed", (method, path, attempt)
                refused.append((method, path, attempt))
        # Still signed in and an administrator: no refused request changed anything.
        assert (await admin.get("/admin")).status_code == 200
    assert len(refused) == len(pages) * len(attempts)
