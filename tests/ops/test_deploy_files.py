"""The dashboard and alert rules use only metrics the service really exports, and the rules
pass promtool's checks and their unit tests."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.api import wat
from tests.fixtures.app import Account, ServerFactory

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
RULE_FILES = (PROMETHEUS / "recording.yaml", PROMETHEUS / "alerts.yaml")
# A metric's or a recorded series' name (recording rules name theirs level:metric:operation).
_NAME = re.compile(r"\b[a-z_:]*wasmwiz[_:][a-z0-9_:]*")


def _rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in RULE_FILES
        for group in yaml.safe_load(path.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_dashboard_and_rules_name_only_exported_metrics(
    server_factory: ServerFactory, ops_account: Account
) -> None:
    server = server_factory()
    httpx.post(
        f"{server.url}/api/v1/execute",
        headers=ops_account.headers,
        files={"wasm": ("hello.wat", wat.HELLO.encode())},
    )
    httpx.post(f"{server.url}/api/v1/execute", files={"wasm": ("x.wat", b"(module")})
    exported = set(_NAME.findall(httpx.get(f"{server.url}/metrics").text))

    rules = _rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    dashboard = (DEPLOY / "grafana" / "dashboards" / "wasmwiz.json").read_text()
    expressions = "\n".join(rule["expr"] for rule in rules)
    used = set(_NAME.findall(dashboard)) | set(_NAME.findall(expressions))
    assert used, "nothing parsed"
    # Anything not recorded by our rules must be a metric the service exports.
    assert used - recorded <= exported, sorted(used - recorded - exported)
    # Every recorded series is read by an alert or the dashboard: none is dead weight.
    read = set(_NAME.findall(dashboard)) | {
        name for rule in rules if "alert" in rule for name in _NAME.findall(rule["expr"])
    }
    assert recorded <= read, sorted(recorded - read)
    alerts = {rule["alert"] for rule in rules if "alert" in rule}
    assert {
        "WasmWizErrorBudgetBurn",
        "WasmWizHighLatency",
        "WasmWizSandboxSaturated",
        "WasmWizCompileWorkerCrashed",
        "WasmWizJobQueueBacklog",
        "WasmWizUsageWriteFailing",
        "WasmWizRateLimiterErrors",
    } <= alerts


@pytest.mark.promtool
@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not found (apt-get install --no-install-recommends prometheus)",
)
def test_rules_pass_promtool_checks_and_their_unit_tests() -> None:
    checked = subprocess.run(
        ["promtool", "check", "rules", *map(str, RULE_FILES)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tests = sorted(str(path) for path in (PROMETHEUS / "tests").glob("*.yaml"))
    assert tests, "no rule tests"
    tested = subprocess.run(
        ["promtool", "test", "rules", *tests], capture_output=True, text=True, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert tested.stdout.count("SUCCESS") == len(tests)
    # Every alert has at least one unit test.
    cases = "\n".join(Path(path).read_text() for path in tests)
    untested = {
        rule["alert"]
        for rule in _rules()
        if "alert" in rule and f"alertname: {rule['alert']}\n" not in cases
    }
    assert not untested, sorted(untested)
