"""The keys page in Chromium: tick several keys, "Revoke selected", confirm, see them revoked."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from tests.browser.conftest import Watch, arrive, check_accessibility
from tests.fixtures.app import ServerFactory

pytestmark = pytest.mark.browser

PASSWORD = "a long passphrase for tests"


def row(page: Page, name: str) -> Locator:
    return page.locator("tbody tr", has=page.locator("td[data-label='Name']", has_text=name))


def test_several_keys_are_selected_and_revoked_together(
    page: Page, server_factory: ServerFactory
) -> None:
    base = server_factory().url
    watch = Watch(page)
    page.goto(base + "/signup")
    page.get_by_label("Email").fill(f"bulk-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    arrive(page, base + "/")

    keys = {}
    for name in ("alpha", "beta", "gamma"):
        page.goto(base + "/api-keys")
        page.get_by_label("Name").fill(name)
        page.get_by_role("button", name="Create key").click()
        arrive(page, base + "/api-keys?created=1")
        keys[name] = page.locator("#new-key").input_value()
    page.goto(base + "/api-keys")

    revoke_selected = page.get_by_role("button", name="Revoke selected")
    expect(revoke_selected).to_be_disabled()  # nothing ticked yet
    page.get_by_label("Select alpha").check()
    page.get_by_label("Select gamma").check()
    expect(revoke_selected).to_be_enabled()
    expect(page.get_by_label("Select every working key on this page")).to_be_visible()
    check_accessibility(page, "keys page with keys ticked")

    # Dismissed first: nothing happens; then accepted.
    questions: list[str] = []

    def answer(accept: bool) -> Callable[[Dialog], None]:
        def on_dialog(dialog: Dialog) -> None:
            questions.append(dialog.message)
            if accept:
                dialog.accept()
            else:
                dialog.dismiss()

        return on_dialog

    page.once("dialog", answer(False))
    revoke_selected.click()
    expect(row(page, "alpha").locator(".badge")).to_have_text("active")
    page.once("dialog", answer(True))
    revoke_selected.click()

    arrive(page, re.compile(r"/api-keys\?revoked=selected&count=2$"))
    expect(page.get_by_role("status")).to_contain_text("2 keys are revoked")
    expect(row(page, "alpha").locator(".badge")).to_have_text("revoked")
    expect(row(page, "gamma").locator(".badge")).to_have_text("revoked")
    expect(row(page, "beta").locator(".badge")).to_have_text("active")
    assert questions == ["Revoke 2 selected keys? Scripts using them stop working at once."] * 2

    with httpx.Client(base_url=base, timeout=30) as api:
        for name, status in (("alpha", 401), ("gamma", 401), ("beta", 200)):
            headers = {"Authorization": f"Bearer {keys[name]}"}
            assert api.get("/api/v1/usage", headers=headers).status_code == status, name

    # "Select all" ticks every working key left.
    page.get_by_label("Select every working key on this page").check()
    expect(page.get_by_label("Select beta")).to_be_checked()
    expect(revoke_selected).to_be_enabled()

    assert watch.page_errors == []
    assert watch.csp_violations() == []
