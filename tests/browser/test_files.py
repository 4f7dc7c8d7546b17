"""The playground attaches files to a run and offers the files it wrote as downloads, in
Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch, check_accessibility
from tests.browser.test_journey import sign_up
from tests.fixtures.app import ServerFactory

pytestmark = pytest.mark.browser

# Copies in.txt to out/in.txt and prints how many bytes it copied.
COPY = Path(__file__).parents[1] / "sandbox" / "fixtures" / "files" / "copy.wasm"


def test_a_file_goes_in_and_its_copy_downloads_byte_for_byte(
    page: Page, server_factory: ServerFactory
) -> None:
    base = server_factory().url
    watch = Watch(page)
    sign_up(page, base)
    payload = bytes(range(256)) * 40 + "été ☃\n".encode()

    page.locator("#wasm-file").set_input_files(str(COPY))
    page.get_by_label("Files", exact=True).set_input_files(
        [{"name": "in.txt", "mimeType": "application/octet-stream", "buffer": payload}]
    )
    page.get_by_label("Files to collect").fill("out/*")
    page.get_by_role("button", name="Run", exact=True).click()

    expect(page.locator("#result-status")).to_have_text("success", timeout=30_000)
    expect(page.locator("#stdout")).to_have_text(f"copied {len(payload)} bytes\n")
    link = page.get_by_role("link", name="out/in.txt")
    expect(link).to_be_visible()
    expect(page.locator("#files-list li")).to_have_count(1)
    expect(page.locator("#files-list .file-size")).to_have_text("10.0 KiB")
    check_accessibility(page, "playground with collected files")

    with page.expect_download() as info:
        link.click()
    download = info.value
    assert download.suggested_filename == "in.txt"
    assert Path(download.path()).read_bytes() == payload

    # A pattern that matches nothing says so; a run that asks for nothing shows no list.
    page.get_by_label("Files to collect").fill("nothing/*")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#files-empty")).to_be_visible(timeout=30_000)
    expect(page.locator("#files-list li")).to_have_count(0)
    page.get_by_label("Files to collect").fill("")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#result-status")).to_have_text("success", timeout=30_000)
    expect(page.locator("#files-section")).to_be_hidden()
    assert watch.page_errors == []
    assert watch.csp_violations() == []


def test_more_files_than_the_limit_are_refused_in_the_page(
    page: Page, server_factory: ServerFactory
) -> None:
    base = server_factory(files_max_input_entries=2).url
    sign_up(page, base)
    page.locator("#wasm-file").set_input_files(str(COPY))
    files = [
        {"name": f"f{index}.txt", "mimeType": "text/plain", "buffer": b"x"} for index in range(3)
    ]
    page.get_by_label("Files", exact=True).set_input_files(files)
    page.get_by_role("button", name="Run", exact=True).click()
    # The page knows the limit: refused before anything is sent.
    expect(page.locator("#form-error")).to_have_text("3 files are chosen; a run takes at most 2.")
