"""A newcomer's first hour in Chromium (issue 22): the pages as an anonymous visitor, a
page that does not exist, signing up, the examples, a refused run and a rate-limited one
shown in the Result panel, a mistyped argument, and a reload after creating a key."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import update

from tests.browser.conftest import Watch, arrive, check_accessibility, run_sync, screenshot
from tests.fixtures.app import ServerFactory
from wasmwiz.persistence import Database
from wasmwiz.persistence.models import SubscriptionTier

pytestmark = pytest.mark.browser

PASSWORD = "a long passphrase for tests"
RUNS_PER_MINUTE = 4


async def limit_free_tier(database_url: str, per_minute: int) -> None:
    database = Database(database_url)
    try:
        async with database.session() as session:
            await session.execute(
                update(SubscriptionTier)
                .where(SubscriptionTier.name == "free")
                .values(requests_per_minute=per_minute)
            )
            await session.commit()
    finally:
        await database.dispose()


_UNSETTLED = "(test: not started)"


def run_and_settle(page: Page, run: Locator) -> str:
    """Click `run` and return the Result panel's badge once that run has been answered.

    The badge is marked first: otherwise the previous run's badge (or one read before the
    page has set "running…") would pass for this run's answer.
    """
    badge = page.locator("#result-status")
    badge.evaluate("(element, text) => { element.textContent = text; }", _UNSETTLED)
    run.click()
    expect(badge).not_to_have_text(
        re.compile(r"^(\(test: not started\)|running…)$"), timeout=30_000
    )
    expect(page.locator("#result")).not_to_have_attribute("aria-busy", "true")
    return badge.inner_text()


def test_a_newcomer_s_first_hour(
    page: Page, server_factory: ServerFactory, migrated_database_url: str, screenshots: Path
) -> None:
    run_sync(limit_free_tier(migrated_database_url, RUNS_PER_MINUTE))
    base = server_factory().url
    watch = Watch(page)

    # Anonymous: the sign-in page, which links the API docs; the docs link back.
    page.goto(base + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=/$"))
    page.get_by_role("link", name="API docs").click()
    arrive(page, base + "/docs")
    page.get_by_role("link", name="WasmWiz pages").click()
    arrive(page, re.compile(r"/login"))

    # A page that does not exist is a page, not JSON.
    missing = page.goto(base + "/dashboard")
    assert missing is not None
    assert missing.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    expect(page.get_by_text("There is no page at this address.")).to_be_visible()
    check_accessibility(page, "404 page")
    screenshot(page, screenshots, "not-found")

    # Sign up; the examples run with one click.
    page.goto(base + "/signup")
    page.get_by_label("Email").fill(f"newcomer-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    arrive(page, base + "/")
    assert run_and_settle(page, page.get_by_role("button", name=re.compile("^Hello, world"))) == (
        "success"
    )
    expect(page.locator("#stdout")).to_have_text("Hello, WasmWiz!\n")

    # An argument with a quote left open is caught before anything is sent.
    page.locator("#args").fill('"Ada')
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#form-error")).to_contain_text("never closed")
    page.locator("#args").fill("")

    # A refused module: the refusal is this run's result, in the Result panel.
    page.get_by_role("tab", name="Paste text").click()
    page.get_by_label("WebAssembly text").fill("(module)")
    assert (
        run_and_settle(page, page.get_by_role("button", name="Run", exact=True)) == "refused (422)"
    )
    expect(page.locator("#result-message")).to_contain_text("The module was refused.")
    expect(page.locator("#stdout")).to_have_text("")
    expect(page.locator("#form-error")).to_be_hidden()

    # Past the tier's runs a minute: the 429 is shown in the panel, not below the fold.
    statuses = []
    for _ in range(RUNS_PER_MINUTE + 1):
        statuses.append(
            run_and_settle(page, page.get_by_role("button", name=re.compile("^Hello, world")))
        )
        if statuses[-1] != "success":
            break
    assert statuses[-1] == "refused (429)", statuses
    expect(page.locator("#result-message")).to_contain_text("Slow down.")
    expect(page.locator("#stat-exit")).to_have_text("—")
    check_accessibility(page, "playground with a refusal")
    screenshot(page, screenshots, "playground-refused")

    # Create a key: shown once; a reload shows the list, with no second key.
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("first key")
    page.get_by_role("button", name="Create key").click()
    arrive(page, base + "/api-keys?created=1")
    key = page.locator("#new-key").input_value()
    assert re.fullmatch(r"ww_[A-Za-z0-9_-]{43}", key)
    page.reload()
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.locator("td[data-label='Name']", has_text="first key")).to_have_count(1)

    assert watch.page_errors == []
    assert watch.csp_violations() == []
