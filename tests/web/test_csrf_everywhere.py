"""Every page route that changes state refuses a request without the right CSRF token.

The routes are found by walking the app `create_app` builds, not listed here: a route
added tomorrow is tried too, and every unsafe route outside the bearer-key API counts as
a page. The requests come from a signed-in administrator, so a route that did not check
the token would act (or refuse for another reason, which fails the test as well).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from tests.api.test_admin_api import create_admin
from tests.fixtures.app import ServerFactory
from tests.web.helpers import make_admin, new_email, sign_up
from wasmwiz.http_common.unit_of_work import UNSAFE_METHODS
from wasmwiz.web.viewer import CSRF_FIELD, CSRF_HEADER

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
    # Every unsafe route outside the bearer-key API is a page route, whatever its class
    # or however it was added: each must refuse.
    pages = [(method, path) for method, path, _ in unsafe_routes(app) if not API_PATHS.match(path)]
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


async def test_the_api_takes_no_csrf_token(
    server_factory: ServerFactory, migrated_database_url: str
) -> None:
    """The API authenticates with a bearer key, which a browser never sends by itself:
    no API route asks for a CSRF token (none answers `csrf_failed`), and one that acts
    does so without it."""
    server = server_factory()
    app = server.server.config.app
    assert isinstance(app, FastAPI)
    api = [(method, path) for method, path, _ in unsafe_routes(app) if API_PATHS.match(path)]
    assert len(api) >= 8, api  # execute twice, keys, revoke-all, admin tiers and users
    admin = await create_admin(migrated_database_url)
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        created = await client.post("/api/v1/keys", headers=admin.headers, json={"name": "n"})
        assert created.status_code == 201, created.text
        for method, path in api:
            # A router-level CSRF check would run before authentication: even once
            # revoke-all has revoked this key, it would answer csrf_failed first.
            response = await client.request(method, concrete(path), headers=admin.headers)
            assert response.status_code != 403, (method, path, response.text)
            assert "csrf" not in response.text, (method, path, response.text)
