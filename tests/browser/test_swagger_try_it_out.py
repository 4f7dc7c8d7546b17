"""Swagger UI's "Try it out" on execute, as a newcomer uses it: authorize, pick a module,
press Execute, and the first attempt runs (nothing else typed, nothing cleared)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.api.wat import HELLO
from tests.browser.conftest import run_sync
from tests.fixtures.app import LiveServer, create_account

pytestmark = pytest.mark.browser


def test_try_it_out_on_execute_runs_on_the_first_attempt(
    page: Page, live_server: LiveServer, migrated_database_url: str, tmp_path: Path
) -> None:
    account = run_sync(create_account(migrated_database_url))
    module = tmp_path / "hello.wat"
    module.write_text(HELLO)
    page.goto(f"{live_server.url}/docs")
    page.wait_for_selector(".opblock-summary-path", timeout=30_000)

    # The canonical path comes first; the alias after it.
    paths = [
        p.replace("\u200b", "") for p in page.locator(".opblock-summary-path").all_inner_texts()
    ]
    assert paths.index("/api/v1/execute") < paths.index("/execute")

    page.locator("button.authorize").click()
    page.locator(".auth-container input").first.fill(account.api_key)
    page.locator(".auth-btn-wrapper button.authorize").click()
    page.locator("button.btn-done").click()

    operation = page.locator("#operations-executions-execute_api_v1_execute_post")
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("input[type=file]").first.set_input_files(str(module))
    operation.locator("button.execute").click()

    status = operation.locator(".live-responses-table tr.response .response-col_status").first
    status.wait_for(timeout=30_000)
    assert status.inner_text().strip() == "200"
    body = operation.locator(
        ".live-responses-table tr.response .response-col_description pre"
    ).first
    assert re.search(r'"status":\s*"success"', body.inner_text())
    assert "Hello, WasmWiz!" in body.inner_text()
