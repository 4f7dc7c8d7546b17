"""Chromium (Debian's, never a downloaded one) driving a real server, with axe-core checks."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright

from tests.fixtures.database import run_outside_loop
from wasmwiz.persistence.migrate import upgrade

CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
# The journey's screenshots replace docs/screenshots only when asked
# (`WASMWIZ_UPDATE_SCREENSHOTS=1 make test`); otherwise a test run leaves the checkout as
# it found it and the pictures go to a temporary directory.
UPDATE_SCREENSHOTS = os.environ.get("WASMWIZ_UPDATE_SCREENSHOTS") == "1"
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 375, "height": 780}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """Browser tests run on SQLite only: the pages' database code is tested on both."""
    return f"sqlite:///{tmp_path / 'wasmwiz.db'}"


@pytest.fixture
def migrated_database_url(database_url: str) -> str:
    run_outside_loop(lambda: upgrade(database_url))
    return database_url


# Module scope, not session: Playwright's sync API keeps an event loop set on this thread
# while it runs, which later async tests would trip over.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


class Watch:
    """What the page did that it should not: script errors, CSP violations, dialogs."""

    def __init__(self, page: Page) -> None:
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console_errors.append(message.text)

    def csp_violations(self) -> list[str]:
        return [text for text in self.console_errors if "Content Security Policy" in text]


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=DESKTOP, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def check_accessibility(page: Page, label: str) -> None:
    """Run axe-core on the page; serious or critical violations fail the test."""
    # evaluate() runs through the DevTools protocol, so the page's CSP does not block it.
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    bad = [v for v in violations if v.get("impact") in ("serious", "critical")]
    summary = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in bad
    ]
    assert not bad, f"accessibility violations on {label}: {json.dumps(summary, indent=1)}"


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    """Where the journey's screenshots go: docs/screenshots/ when updating, else tmp_path."""
    if UPDATE_SCREENSHOTS:
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOCS_SCREENSHOTS
    return tmp_path


def screenshot(page: Page, directory: Path, name: str) -> None:
    """Save the page at desktop and phone widths into `directory`."""
    original = page.viewport_size or DESKTOP
    for suffix, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        path = directory / f"{name}-{suffix}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0, path
    page.set_viewport_size(original)


def run_sync(coroutine: Any) -> Any:
    """Run a coroutine from a sync test (no loop is running there)."""
    return run_outside_loop(lambda: asyncio.run(coroutine))


def arrive(page: Page, url: str | re.Pattern[str]) -> None:
    """Wait until a click has led to `url` and that page's scripts have run.

    The URL changes when the navigation commits, before the page's deferred scripts attach
    their listeners: an input or a click made in between goes unanswered.
    """
    expect(page).to_have_url(url)
    page.wait_for_load_state("load")
