"""A newcomer's journey through the pages in Chromium, and the attacks the pages must resist."""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.api.wat import HELLO, printing
from tests.browser.conftest import Watch, arrive, check_accessibility, screenshot
from tests.fixtures.app import ServerFactory

pytestmark = pytest.mark.browser

PASSWORD = "a long passphrase for tests"
SCRIPT_OUTPUT = "<script>alert(1)</script><img src=x onerror=alert(2)>"


def sign_up(page: Page, base: str) -> str:
    email = f"browser-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(base + "/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    arrive(page, base + "/")
    return email


def test_newcomer_journey(page: Page, server_factory: ServerFactory, screenshots: Path) -> None:
    base = server_factory().url
    watch = Watch(page)

    # Anonymous visitors are sent to sign in; the page is served under a strict CSP.
    response = page.goto(base + "/")
    assert response is not None
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    csp = response.headers["content-security-policy"]
    script_src = next(part for part in csp.split(";") if part.strip().startswith("script-src"))
    assert "'self'" in script_src
    assert "unsafe-inline" not in script_src
    check_accessibility(page, "sign-in page")
    page.goto(base + "/signup")
    check_accessibility(page, "sign-up page")
    expect(page.get_by_text("At least 10 characters")).to_be_visible()

    email = sign_up(page, base)
    check_accessibility(page, "playground")

    # One click on the hello example runs it.
    page.get_by_role("button", name=re.compile("^Hello, world")).click()
    expect(page.locator("#result-status")).to_have_text("success")
    expect(page.locator("#stdout")).to_have_text("Hello, WasmWiz!\n")
    expect(page.locator("#stat-exit")).to_have_text("0")
    screenshot(page, screenshots, "playground")
    check_accessibility(page, "playground with a result")

    # Create a key; it is shown once, in full.
    page.get_by_role("link", name="API keys").click()
    check_accessibility(page, "API keys page")
    page.get_by_label("Name").fill("from the browser test")
    page.get_by_role("button", name="Create key").click()
    key = page.locator("#new-key").input_value()
    assert re.fullmatch(r"ww_[A-Za-z0-9_-]{43}", key)
    page.get_by_role("button", name="Copy").click()
    expect(page.locator("#copy-status")).not_to_be_empty()
    screenshot(page, screenshots, "keys")
    check_accessibility(page, "API keys page with a new key")

    # The key works with the JSON API.
    auth = {"Authorization": f"Bearer {key}"}
    api_run = httpx.post(
        base + "/api/v1/execute", headers=auth, files={"wasm": ("hello.wat", HELLO)}, timeout=30
    )
    assert api_run.status_code == 200, api_run.text
    assert api_run.json()["output"] == "Hello, WasmWiz!\n"

    # Both runs (playground and API) are on the usage page once the recorder has written them.
    deadline = time.monotonic() + 20
    while True:
        page.goto(base + "/usage")
        rows = page.locator("table tbody tr")
        if rows.count() >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="API key")).to_have_count(1)
    expect(rows.filter(has_text="Playground")).to_have_count(1)
    expect(page.locator(".metric-value").first).to_contain_text("2")
    screenshot(page, screenshots, "usage")
    check_accessibility(page, "usage page")

    # Revoke, confirming the dialog; the API refuses the key from then on.
    page.goto(base + "/api-keys")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=re.compile("^Revoke (?!every key|selected)")).click()
    expect(page.get_by_text("The key is revoked")).to_be_visible()
    expect(page.locator(".badge-revoked")).to_have_count(1)
    refused = httpx.post(
        base + "/api/v1/execute", headers=auth, files={"wasm": ("hello.wat", HELLO)}, timeout=30
    )
    assert refused.status_code == 401
    assert refused.json()["code"] == "unauthorized"

    # Sign out and back in.
    page.get_by_role("button", name="Sign out").click()
    arrive(page, base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    arrive(page, base + "/")

    assert watch.page_errors == []
    assert watch.csp_violations() == []


def test_oversized_file_is_refused_before_upload(page: Page, server_factory: ServerFactory) -> None:
    base = server_factory(max_wasm_size=4096).url
    sign_up(page, base)
    uploads: list[str] = []
    page.on(
        "request", lambda request: uploads.append(request.url) if "/upload" in request.url else None
    )

    page.locator("#wasm-file").set_input_files(
        {"name": "big.wasm", "mimeType": "application/wasm", "buffer": b"\0asm" + b"\0" * 5000}
    )
    expect(page.locator("#form-error")).to_contain_text("the limit is 4.0 KiB")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#form-error")).to_contain_text("the limit is 4.0 KiB")

    page.locator("#wasm-file").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"}
    )
    expect(page.locator("#form-error")).to_contain_text("choose a .wasm or .wat file")
    page.get_by_role("button", name="Run", exact=True).click()
    assert uploads == []


def test_a_timeout_is_shown_as_a_timeout(page: Page, server_factory: ServerFactory) -> None:
    base = server_factory(execution_timeout=1.0).url
    sign_up(page, base)
    page.get_by_role("button", name=re.compile("^Infinite loop")).click()
    expect(page.locator("#result-status")).to_have_text("timeout", timeout=30_000)
    expect(page.locator("#result-message")).to_contain_text("ran past the time limit")
    expect(page.locator("#stat-exit")).to_have_text("—")


def test_program_output_is_text_and_runs_no_script(
    page: Page, server_factory: ServerFactory
) -> None:
    base = server_factory().url
    watch = Watch(page)
    sign_up(page, base)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    page.get_by_role("tab", name="Paste text").click()
    page.get_by_label("WebAssembly text").fill(printing(SCRIPT_OUTPUT))
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#result-status")).to_have_text("success")
    expect(page.locator("#stdout")).to_have_text(SCRIPT_OUTPUT)
    assert page.locator("#stdout").evaluate("node => node.children.length") == 0
    assert page.locator("#result script, #result img").count() == 0
    page.wait_for_timeout(500)
    assert dialogs == []
    assert watch.page_errors == []


def test_a_form_posted_without_its_csrf_token_is_refused(
    page: Page, server_factory: ServerFactory
) -> None:
    base = server_factory().url
    sign_up(page, base)
    page.goto(base + "/api-keys")
    page.get_by_label("Name").fill("should not exist")
    page.locator("form[action='/generate-key'] input[name='csrf_token']").evaluate(
        "input => input.remove()"
    )
    with page.expect_response(base + "/generate-key") as refused:
        page.get_by_role("button", name="Create key").click()
    assert refused.value.status == 403
    expect(page.get_by_text("csrf_failed")).to_be_visible()

    # A forged token is refused too, and the upload needs its header as well.
    status = page.evaluate(
        """async () => (await fetch('/upload', {method: 'POST', body: new FormData(),
            headers: {'X-CSRF-Token': 'forged', 'Accept': 'application/json'}})).status"""
    )
    assert status == 403
    page.goto(base + "/api-keys")
    expect(page.get_by_text("should not exist")).to_have_count(0)
