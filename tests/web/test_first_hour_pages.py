"""What a browser and curl meet first (issue 22): error pages a person can read, a favicon,
JSON that ends its line, a new key that a reload does not duplicate, and the docs linked."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.api import wat
from tests.examples.conftest import ROOT
from tests.fixtures.app import LiveServer, ServerFactory
from tests.web.helpers import new_email, page_csrf, sign_up
from wasmwiz_client import ExecutionResult

BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("path", "status", "sentence"),
    [
        ("/keys", 404, "There is no page at this address."),
        ("/dashboard", 404, "There is no page at this address."),
        ("/logout", 405, "This address takes a form sent from its page"),
        ("/generate-key", 405, "This address takes a form sent from its page"),
    ],
)
async def test_a_browser_gets_an_error_page_and_a_script_gets_problem_json(
    live_server: LiveServer, path: str, status: int, sentence: str
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        page = await http.get(path, headers=BROWSER)
        assert page.status_code == status
        assert page.headers["content-type"].startswith("text/html")
        assert sentence in page.text
        assert 'href="/docs"' in page.text  # the page's own navigation, and the way back
        script = await http.get(path, headers={"Accept": "application/json"})
        assert script.status_code == status
        assert script.headers["content-type"] == "application/problem+json"
        # The API stays JSON even for a browser.
        api = await http.get("/api/v1/nothing-here", headers=BROWSER)
        assert api.headers["content-type"] == "application/problem+json"


async def test_there_is_a_favicon(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        icon = await http.get("/favicon.ico")
        assert icon.status_code == 200
        assert icon.headers["content-type"].startswith("image/svg+xml")
        assert icon.content.startswith(b"<svg")
        assert '<link rel="icon"' in (await http.get("/login")).text


async def test_json_answers_end_with_a_newline(
    live_server: LiveServer, account_headers: dict[str, str]
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        refused = await http.post("/api/v1/execute", files={"wasm": ("m.wat", wat.HELLO.encode())})
        assert refused.status_code == 401
        assert refused.content.endswith(b"}\n")
        ran = await http.post(
            "/api/v1/execute",
            headers=account_headers,
            files={"wasm": ("m.wat", wat.HELLO.encode())},
        )
        assert ran.status_code == 200
        assert ran.content.endswith(b"}\n")
        assert ran.json()["output"] == "Hello, WasmWiz!\n"


@pytest.fixture
async def account_headers(migrated_database_url: str) -> dict[str, str]:
    from tests.fixtures.app import create_account

    account = await create_account(migrated_database_url)
    return {"Authorization": f"Bearer {account.api_key}"}


async def test_a_reload_after_creating_a_key_creates_no_second_key(
    live_server: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        await sign_up(http, new_email())
        token = await page_csrf(http)
        made = await http.post(
            "/generate-key", headers=BROWSER, data={"name": "laptop", "csrf_token": token}
        )
        assert made.status_code == 303
        assert made.headers["location"] == "/api-keys?created=1"
        assert made.headers["cache-control"] == "no-store"
        shown = await http.get(made.headers["location"], headers=BROWSER)
        assert shown.status_code == 200
        assert "Your new key “laptop”" in shown.text
        assert shown.headers["cache-control"] == "no-store"
        assert shown.text.count('id="new-key"') == 1
        # The reload is a GET: the key is not shown again and no second key exists.
        again = await http.get("/api-keys?created=1", headers=BROWSER)
        assert 'id="new-key"' not in again.text
        assert again.text.count('<td data-label="Name">laptop</td>') == 1


async def test_the_pages_and_the_api_docs_link_to_each_other(live_server: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        assert 'href="/docs"' in (await http.get("/login", headers=BROWSER)).text
        for path in ("/docs", "/redoc"):
            docs = (await http.get(path)).text
            assert '<a href="./">WasmWiz pages</a>' in docs
            assert "body{margin:0}" in docs  # ReDoc had an 8 px white border


async def test_the_error_guide_s_example_is_what_the_server_sends(
    live_server: LiveServer, account_headers: dict[str, str]
) -> None:
    guide = (ROOT / "docs" / "errors.md").read_text()
    example = json.loads(re.findall(r"```json\n(.*?)```", guide, flags=re.DOTALL)[0])
    module = (
        '(module (import "env" "foo" (func)) (memory (export "memory") 1) (func (export "_start")))'
    )
    async with httpx.AsyncClient(base_url=live_server.url, timeout=30) as http:
        refused = await http.post(
            "/api/v1/execute", headers=account_headers, files={"wasm": ("m.wat", module)}
        )
    sent = refused.json()
    for field in ("type", "title", "status", "detail", "code", "instance"):
        assert sent[field] == example[field], field


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_fuel_after_a_timeout_is_named_a_lower_bound(
    server_factory: ServerFactory, account_headers: dict[str, str]
) -> None:
    # Fuel is counted only with a budget: a budget far beyond what the loop can burn in
    # 0.5 s, so the deadline stops it with the count a lower bound.
    server = server_factory(execution_timeout=0.5)
    budget = {"max_fuel": str(10**15)}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

        async def execute(module: str, data: dict[str, str]) -> httpx.Response:
            return await http.post(
                "/api/v1/execute",
                headers=account_headers,
                files={"wasm": ("m.wat", module.encode())},
                data=data,
            )

        spun = await execute(wat.INFINITE_LOOP, budget)
        ran = await execute(wat.HELLO, budget)
        unmetered = await execute(wat.INFINITE_LOOP, {})
    assert spun.json()["status"] == "timeout"
    assert spun.json()["fuel_consumed_is_lower_bound"] is True
    assert ran.json()["status"] == "success"
    assert ran.json()["fuel_consumed_is_lower_bound"] is False
    assert ran.json()["fuel_consumed"] > 0
    result = ExecutionResult.from_response(spun.json(), spun.headers)
    assert result.fuel_consumed_is_lower_bound
    # Without a budget nothing is counted: no figure, so no bound of anything.
    assert unmetered.json()["status"] == "timeout"
    assert unmetered.json()["fuel_consumed"] is None
    assert unmetered.json()["fuel_consumed_is_lower_bound"] is False
    result = ExecutionResult.from_response(unmetered.json(), unmetered.headers)
    assert (result.fuel_consumed, result.fuel_consumed_is_lower_bound) == (None, False)
