"""Fixtures shared by the whole suite, and the CI rule that no service test may skip."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.database", "tests.fixtures.app", "tests.fixtures.faults"]

_SERVICE_MARKERS = ("postgres", "redis", "browser", "toolchain", "promtool")

# Every randomized test (Hypothesis, schemathesis) draws from this seed, so a run can be
# replayed and a good change is never refused by chance. Change it on purpose, or set
# WASMWIZ_TEST_SEED to explore: a failure then names the seed that found it.
DEFAULT_TEST_SEED = 20261203


def randomized_test_seed() -> int:
    return int(os.environ.get("WASMWIZ_TEST_SEED", DEFAULT_TEST_SEED))


def pytest_report_header(config: pytest.Config) -> str:
    seed = randomized_test_seed()
    return f"wasmwiz test seed: {seed} (WASMWIZ_TEST_SEED; Hypothesis and schemathesis)"


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Hypothesis reads --hypothesis-seed in its own pytest_configure, which runs after
    this one: unless given on the command line, it is the test seed. (Tests that set
    `derandomize=True` stay derandomized: deterministic either way.)"""
    if config.getoption("hypothesis_seed", default=None) is None:
        config.option.hypothesis_seed = str(randomized_test_seed())


# Tests that measure what a request costs the server (CPU, peak memory, another client's
# latency) or pace themselves against a benchmark: `make test` runs them in a pass of
# their own, before the rest run on several processes, so no other test's load is counted.
# A module there that measures nothing (it checks outcomes) says so with the `parallel`
# marker, and runs with the rest, under coverage.
_SERIAL_DIRECTORIES = ("security", "perf_behaviour")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests_root = Path(__file__).parent
    for item in items:
        relative = (
            item.path.relative_to(tests_root) if item.path.is_relative_to(tests_root) else None
        )
        in_serial_directory = relative is not None and relative.parts[0] in _SERIAL_DIRECTORIES
        if in_serial_directory and item.get_closest_marker("parallel") is None:
            item.add_marker(pytest.mark.serial)


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
