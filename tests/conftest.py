"""Fixtures shared by the whole suite, and the CI rule that no service test may skip."""

from __future__ import annotations

import os
from collections.abc import Generator

import pytest

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.app"]

_SERVICE_MARKERS = ("postgres", "redis", "browser", "toolchain")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    """Under WASMWIZ_REQUIRE_ALL_TESTS=1 (set by .ci/run) a skipped service test fails."""
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if not report.skipped or os.environ.get("WASMWIZ_REQUIRE_ALL_TESTS") != "1":
        return
    if any(item.get_closest_marker(marker) for marker in _SERVICE_MARKERS):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped in CI, where every service test must run: {reason}"
