"""A signed-in user's pages spend the account's request budget, as its API keys' calls do.

Without it a signed-in browser (or a script with its cookie) could reload the usage page,
the keys page or the modules page without limit, each a query or several. The routes are
found by walking the app `create_app` builds, as tests/web/test_csrf_everywhere.py does:
a page route added tomorrow is tried too.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.fixtures.app import ServerFactory
from tests.web.helpers import new_email, page_csrf, sign_up
from tests.web.test_csrf_everywhere import API_PATHS, all_routes, concrete
from wasmwiz.ratelimit import ManualClock
from wasmwiz.web.viewer import CSRF_HEADER, SESSION_COOKIE, UNMETERED_PAGE_PATHS

pytestmark = pytest.mark.anyio

_KEY = re.compile(r"ww_[A-Za-z0-9_-]+")
# Not pages: the probes and metrics (never limited: an orchestrator reads them), and files
# the same for everyone (the API's documentation, the icon).
NOT_PAGES = frozenset(
    {"/health", "/health/live", "/health/ready", "/metrics", "/docs", "/redoc", "/favicon.ico"}
)


async def test_every_page_route_spends_the_budget_of_a_signed_in_user(
    server_factory: ServerFactory,
) -> None:
    # One request a minute, on a clock that does not move: once the keys page has spent
    # it, every page route must refuse before it runs, whatever it would have answered.
    server = server_factory(
        app_options={"clock": ManualClock(1_700_000_000.0)}, api_requests_per_minute=1
    )
    app = server.server.config.app
    pages = [
        (method, path)
        for path, route in all_routes(app.routes)
        if not API_PATHS.match(path) and path not in NOT_PAGES | UNMETERED_PAGE_PATHS
        for method in sorted(route.methods - {"HEAD"})
    ]
    assert len(pages) >= 25, pages  # the pages, the forms, sign-in...
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as browser:
        await sign_up(browser, new_email())
        token = await page_csrf(browser)  # the one request of the budget
        answers = {
            (method, path): await browser.request(
                method, concrete(path), headers={CSRF_HEADER: token, "Accept": "text/html"}
            )
            for method, path in pages
        }
    not_refused = {
        route: (response.status_code, response.text[:200])
        for route, response in answers.items()
        if response.status_code != 429
    }
    assert not_refused == {}


async def test_pages_and_keys_share_one_budget_per_account(server_factory: ServerFactory) -> None:
    # The pages spend what the API's calls spend (ApiRequestLimit); that the budget is
    # one per account on either limiter backend is tests/api/test_account_limits.py's.
    server = server_factory(
        app_options={"clock": ManualClock(1_700_000_000.0)}, api_requests_per_minute=4
    )
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as browser,
        httpx.AsyncClient(base_url=server.url, timeout=30) as other,
        httpx.AsyncClient(base_url=server.url, timeout=30) as visitor,
    ):
        await sign_up(browser, new_email())
        token = await page_csrf(browser)  # 1
        created = await browser.post("/generate-key", data={"name": "ci", "csrf_token": token})
        assert created.status_code == 200  # 2
        match = _KEY.search(created.text)
        assert match is not None
        headers = {"Authorization": f"Bearer {match.group(0)}"}
        assert (await browser.get("/api/v1/usage", headers=headers)).status_code == 200  # 3
        assert (await browser.get("/usage")).status_code == 200  # 4
        page = await browser.get("/usage")
        api = await browser.get("/api/v1/usage", headers=headers)
        await sign_up(other, new_email())
        others = await other.get("/usage")
        anonymous = await visitor.get("/login")
    assert page.status_code == 429
    assert page.headers["content-type"].startswith("text/html")
    assert int(page.headers["Retry-After"]) >= 1
    assert "requests a minute" in page.text
    assert api.status_code == 429
    assert api.json()["code"] == "api_rate_limited"
    assert others.status_code == 200
    assert anonymous.status_code == 200


async def test_a_user_over_the_budget_can_still_sign_out(server_factory: ServerFactory) -> None:
    server = server_factory(
        app_options={"clock": ManualClock(1_700_000_000.0)}, api_requests_per_minute=1
    )
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as browser:
        await sign_up(browser, new_email())
        token = await page_csrf(browser)  # the one request of the budget
        refused = await browser.get("/api-keys")
        signed_out = await browser.post("/logout", data={"csrf_token": token})
        after = await browser.get("/api-keys")
    assert refused.status_code == 429
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == "/login"
    assert SESSION_COOKIE not in browser.cookies
    # Signed out: the keys page sends a visitor to sign in, and spends nothing.
    assert after.status_code == 303
    assert after.headers["location"].startswith("/login")
