"""The gate refuses each kind of regression, applied to a scratch copy of the tree.

Each test breaks the copy in one way and runs only the stage that must catch it, the way
.ci/run runs it (`make STAGE`), then checks that the stage fails and names the breakage.
They run when CI_SELFTEST=1, which .ci/run sets.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from tests.ci.gate import ROOT, ScratchTree

pytestmark = pytest.mark.skipif(
    os.environ.get("CI_SELFTEST") != "1", reason="the gate self-test runs under .ci/run"
)

ADVISORIES = str(ROOT / "tests" / "ci" / "advisories")
VULNERABLE_ID = "GHSA-462w-v97r-4m45"  # Jinja2 before 2.10.1: sandbox escape (CVE-2019-10906)


@pytest.fixture
def tree(tmp_path: Path) -> ScratchTree:
    return ScratchTree(tmp_path / "tree")


def test_a_lint_error_fails_the_lint_stage(tree: ScratchTree) -> None:
    tree.write("src/wasmwiz/breakage_lint.py", '"""Breakage."""\n\nimport os\n')

    result = tree.stage("lint")

    assert result.returncode != 0, result.output
    assert "src/wasmwiz/breakage_lint.py" in result.output
    assert "F401" in result.output


def test_a_type_error_fails_the_typecheck_stage(tree: ScratchTree) -> None:
    tree.write(
        "src/wasmwiz/breakage_types.py",
        '"""Breakage."""\n\n\ndef answer() -> int:\n    return "forty-two"\n',
    )

    result = tree.stage("typecheck")

    assert result.returncode != 0, result.output
    assert "src/wasmwiz/breakage_types.py:5: error" in result.output
    assert "[return-value]" in result.output


def test_a_layering_violation_fails_the_layers_stage(tree: ScratchTree) -> None:
    tree.write(
        "src/wasmwiz/services/breakage_layers.py",
        '"""Breakage: a service reaching up into the HTTP adapter."""\n\n'
        "from wasmwiz.api import schemas\n\n__all__ = ['schemas']\n",
    )

    result = tree.stage("layers")

    assert result.returncode != 0, result.output
    assert "BROKEN" in result.output
    assert "wasmwiz.services.breakage_layers" in result.output


# The test stage's self-tests run `make test` (two pytest passes, the second on xdist
# workers) in the copy, once or twice: a minute alone, more beside the suite's own
# workers. One worker in the copy keeps the two-pass path and costs less; the timeout is
# the stage's own (gate.py).
STAGE_TIMEOUT = 600


@pytest.mark.postgres
@pytest.mark.timeout(STAGE_TIMEOUT)
def test_a_test_failing_only_on_postgres_fails_the_test_stage(tree: ScratchTree) -> None:
    tree.write(
        "tests/test_breakage_postgres.py",
        '"""Breakage: passes on SQLite, fails on PostgreSQL."""\n\n\n'
        "def test_dialect(database_url: str) -> None:\n"
        '    assert not database_url.startswith("postgresql")\n',
    )

    result = tree.stage(
        "test", "COVERAGE=", "TESTS=tests/test_breakage_postgres.py", "TEST_WORKERS=1"
    )

    assert result.returncode != 0, result.output
    assert "FAILED tests/test_breakage_postgres.py::test_dialect[postgres]" in result.output
    assert "1 failed, 1 passed" in result.output


@pytest.mark.timeout(2 * STAGE_TIMEOUT)
def test_coverage_below_the_floor_fails_the_test_stage(tree: ScratchTree) -> None:
    # The floor is the gate's own (pyproject.toml). To stay fast the run is narrowed to a
    # package of its own with one test: fully covered it passes, an untested module sinks it.
    # (test_stages.py checks that the stage, unnarrowed, measures the whole package.)
    tree.write(
        "src/wasmwiz/breakage_coverage/__init__.py",
        '"""Breakage."""\n\n\ndef covered() -> int:\n    return 1\n',
    )
    tree.write(
        "tests/test_breakage_coverage.py",
        '"""Breakage."""\n\nfrom wasmwiz.breakage_coverage import covered\n\n\n'
        "def test_covered() -> None:\n    assert covered() == 1\n",
    )
    narrowed = (
        "COVERAGE=--cov=wasmwiz.breakage_coverage --cov-report=term-missing",
        "TESTS=tests/test_breakage_coverage.py",
        "TEST_WORKERS=1",
    )
    untested = "\n\n".join(
        f"def branch_{n}(flag: bool) -> int:\n    if flag:\n        return {n}\n    return -{n}\n"
        for n in range(3)
    )

    unbroken = tree.stage("test", *narrowed)
    tree.write("src/wasmwiz/breakage_coverage/untested.py", f'"""Breakage."""\n\n\n{untested}')
    broken = tree.stage("test", *narrowed)

    assert unbroken.returncode == 0, unbroken.output
    assert broken.returncode != 0, broken.output
    assert "untested.py" in broken.output
    assert "FAIL Required test coverage of 85.0% not reached" in broken.output


def _pin_vulnerable_jinja2(tree: ScratchTree) -> None:
    pins = (tree.path / "requirements/dev.txt").read_text().splitlines()
    current = next(line for line in pins if line.lower().startswith("jinja2=="))
    tree.replace("requirements/dev.txt", current, "jinja2==2.10 \\")


def _ignore(tree: ScratchTree, expires: dt.date) -> None:
    tree.write(
        ".ci/audit-ignore.toml",
        f'[[ignore]]\nid = "{VULNERABLE_ID}"\npackage = "jinja2"\n'
        f'reason = "The self-test accepts it."\nexpires = {expires.isoformat()}\n',
    )


def test_a_known_vulnerable_pin_fails_the_audit_stage(tree: ScratchTree) -> None:
    offline = {"WASMWIZ_AUDIT_OSV_DIR": ADVISORIES}

    unbroken = tree.stage("audit", env=offline)
    _pin_vulnerable_jinja2(tree)
    broken = tree.stage("audit", env=offline)

    assert unbroken.returncode == 0, unbroken.output
    assert broken.returncode != 0, broken.output
    assert VULNERABLE_ID in broken.output
    assert "jinja2 2.10" in broken.output


def test_an_ignore_entry_lets_the_vulnerability_through_until_it_expires(
    tree: ScratchTree,
) -> None:
    offline = {"WASMWIZ_AUDIT_OSV_DIR": ADVISORIES}
    _pin_vulnerable_jinja2(tree)

    _ignore(tree, dt.date.today() + dt.timedelta(days=30))
    ignored = tree.stage("audit", env=offline)
    _ignore(tree, dt.date.today() - dt.timedelta(days=1))
    expired = tree.stage("audit", env=offline)

    assert ignored.returncode == 0, ignored.output
    assert f"ignoring {VULNERABLE_ID}" in ignored.output
    assert expired.returncode != 0, expired.output
    assert "expired on" in expired.output


def test_a_bandit_finding_fails_the_bandit_stage(tree: ScratchTree) -> None:
    tree.write(
        "src/wasmwiz/breakage_shell.py",
        '"""Breakage."""\n\nimport subprocess\n\n\n'
        "def run(command: str) -> None:\n"
        "    subprocess.run(command, shell=True, check=True)\n",
    )

    result = tree.stage("bandit")

    assert result.returncode != 0, result.output
    assert "B602" in result.output
    assert "src/wasmwiz/breakage_shell.py" in result.output


def test_a_broken_workflow_fails_the_workflows_stage(tree: ScratchTree) -> None:
    tree.replace(".github/workflows/ci.yml", "runs-on: ubuntu-latest", "runs_on: ubuntu-latest")

    result = tree.stage("workflows")

    assert result.returncode != 0, result.output
    assert ".github/workflows/ci.yml" in result.output
    assert "runs_on" in result.output


def test_an_alert_that_no_longer_fires_as_tested_fails_the_rules_stage(tree: ScratchTree) -> None:
    tree.replace(
        "deploy/prometheus/alerts.yaml",
        "instance:wasmwiz_executions_saturation:ratio >= 0.9",
        "instance:wasmwiz_executions_saturation:ratio >= 0.2",
    )

    result = tree.stage("rules")

    assert result.returncode != 0, result.output
    assert "alertname: WasmWizSandboxSaturated" in result.output


def test_the_rules_stage_says_how_to_install_a_missing_promtool(tree: ScratchTree) -> None:
    result = tree.stage("rules", "PROMTOOL=promtool-not-installed")

    assert result.returncode != 0, result.output
    assert "apt-get install --no-install-recommends prometheus" in result.output
