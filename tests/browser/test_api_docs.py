"""/docs (Swagger UI) and /redoc in Chromium, with every request outside the server refused."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Page, Route

from tests.browser.conftest import Watch
from tests.fixtures.app import LiveServer

pytestmark = pytest.mark.browser

OPERATIONS = {
    ("post", "/api/v1/execute"),
    ("post", "/execute"),
    ("get", "/health"),
    ("get", "/api/v1/keys"),
    ("post", "/api/v1/keys"),
    ("delete", "/api/v1/keys/{key_id}"),
    ("get", "/api/v1/usage"),
    ("get", "/metrics"),
}


@pytest.fixture
def offline_page(page: Page, live_server: LiveServer) -> tuple[Page, list[str]]:
    """The page may load from the server alone: anything else is aborted and recorded."""
    outside: list[str] = []

    def only_the_server(route: Route) -> None:
        url = route.request.url
        if url.startswith((live_server.url + "/", "data:", "blob:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_the_server)
    return page, outside


def test_swagger_ui_lists_every_operation_offline(
    offline_page: tuple[Page, list[str]], live_server: LiveServer
) -> None:
    page, outside = offline_page
    watch = Watch(page)
    response = page.goto(f"{live_server.url}/docs")
    assert response is not None
    assert response.status == 200
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)
    paths = page.locator(".opblock-summary-path").all_inner_texts()
    methods = [m.lower() for m in page.locator(".opblock-summary-method").all_inner_texts()]
    listed = {
        (method, path.replace("\u200b", "")) for method, path in zip(methods, paths, strict=True)
    }
    assert listed >= OPERATIONS, listed
    # The Bearer scheme is there to authorise with.
    assert page.locator("button.authorize").count() == 1
    assert outside == []
    assert watch.page_errors == []
    assert watch.csp_violations() == []


def test_redoc_renders_the_operations_offline(
    offline_page: tuple[Page, list[str]], live_server: LiveServer
) -> None:
    page, outside = offline_page
    watch = Watch(page)
    response = page.goto(f"{live_server.url}/redoc")
    assert response is not None
    assert response.status == 200
    page.locator("h2", has_text="Run a WebAssembly module").first.wait_for(timeout=30_000)
    headings = page.locator("h2").all_inner_texts()
    for summary in (
        "Run a WebAssembly module",
        "Create an API key",
        "Revoke an API key",
        "Your usage",
        "Service health",
    ):
        assert summary in headings
    text = page.inner_text("body")
    assert "X-RateLimit-Remaining" in text
    assert outside == []
    assert watch.page_errors == []
    assert watch.csp_violations() == []


def test_doc_pages_are_served_with_a_self_only_script_policy(live_server: LiveServer) -> None:
    for path in ("/docs", "/redoc"):
        response = httpx.get(f"{live_server.url}{path}", timeout=30)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp
        assert "<script>" not in response.text  # every script is a file of ours
    asset = httpx.get(f"{live_server.url}/docs/static/swagger-ui-bundle.js", timeout=30)
    assert asset.status_code == 200
    assert "javascript" in asset.headers["content-type"]
