"""The gate is made of every stage: `.ci/run` calls them, and `make check` includes its own."""

from __future__ import annotations

import subprocess

from tests.ci.gate import ROOT


def _dry_run(target: str) -> str:
    completed = subprocess.run(
        ["make", "--dry-run", "--no-print-directory", "-o", ".venv/.installed-stamp", target],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout


def test_ci_run_calls_the_static_stages_the_audit_and_the_tests_with_the_self_test() -> None:
    lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]

    assert "set -euo pipefail" in lines
    assert lines.index("make check") < lines.index("make audit") < lines.index("make test")
    assert lines.index("export CI_SELFTEST=1") < lines.index("make test")
    assert "export WASMWIZ_REQUIRE_ALL_TESTS=1" in lines


def test_make_check_runs_every_static_stage() -> None:
    commands = _dry_run("check")

    for tool in (
        "ruff check",
        "ruff format --check",
        "mypy",
        "lint-imports",
        "actionlint",
        "bandit",
        "hadolint",
    ):
        assert f".venv/bin/{tool}" in commands, tool
    # promtool is Debian's (.ci/run installs it), not the virtualenv's.
    assert "promtool check rules" in commands
    assert "promtool test rules deploy/prometheus/tests/*.yaml" in commands


def test_make_test_measures_coverage_and_keeps_reports() -> None:
    commands = _dry_run("test").splitlines()
    serial, parallel = (line for line in commands if line.startswith(".venv/bin/pytest"))

    # The measuring tests alone and untraced, then the rest on several processes, measured.
    assert serial.startswith(".venv/bin/pytest -m serial ")
    assert "--cov" not in serial
    assert '-m "not serial" -n ' in parallel
    assert "--cov --cov-report=term-missing:skip-covered" in parallel
    assert "--cov-report=xml:reports/coverage.xml" in parallel
    assert "--junitxml=reports/junit.xml" in parallel
    assert "--junitxml=reports/junit-serial.xml" in serial
