"""The playground runs JavaScript and Lua on the public runtimes, in Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch, check_accessibility
from tests.browser.test_journey import sign_up
from tests.fixtures.app import ServerFactory

pytestmark = pytest.mark.browser


def test_run_javascript_and_run_lua(page: Page, server_factory: ServerFactory) -> None:
    base = server_factory(install_bundled_runtimes=True).url
    watch = Watch(page)
    sign_up(page, base)

    page.get_by_role("button", name=re.compile("^Run JavaScript")).click()
    expect(page.locator("#result-status")).to_have_text("success", timeout=30_000)
    expect(page.locator("#stdout")).to_have_text("squares: [ 1, 4, 9 ]\n")
    expect(page.locator("#stdin-field")).to_be_hidden()
    check_accessibility(page, "playground with a runtime")

    page.get_by_role("button", name=re.compile("^Run Lua")).click()
    expect(page.locator("#stdout")).to_have_text("lua, sandbox, wasm\n", timeout=30_000)

    # A program of one's own, with an error: its message on stderr, exit status 1.
    page.get_by_label("Language").select_option("lua")
    page.get_by_role("textbox", name="Program").fill('error("no such thing")')
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#result-status")).to_have_text("exit_nonzero", timeout=30_000)
    expect(page.locator("#stderr")).to_contain_text("no such thing")

    # Back to a module: the input field returns.
    page.get_by_role("tab", name="Paste text").click()
    expect(page.locator("#stdin-field")).to_be_visible()
    assert watch.page_errors == []
    assert watch.csp_violations() == []
