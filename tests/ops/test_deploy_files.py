"""The dashboard and alert rules use only metrics the service really exports."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import yaml

from tests.api import wat
from tests.fixtures.app import Account, ServerFactory

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
_METRIC = re.compile(r"\bwasmwiz_[a-z_]+")


def test_dashboard_and_alerts_name_only_exported_metrics(
    server_factory: ServerFactory, ops_account: Account
) -> None:
    server = server_factory()
    httpx.post(
        f"{server.url}/api/v1/execute",
        headers=ops_account.headers,
        files={"wasm": ("hello.wat", wat.HELLO.encode())},
    )
    httpx.post(f"{server.url}/api/v1/execute", files={"wasm": ("x.wat", b"(module")})
    exported = set(_METRIC.findall(httpx.get(f"{server.url}/metrics").text))

    dashboard = (DEPLOY / "grafana" / "wasmwiz-dashboard.json").read_text()
    rules = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yaml").read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = set(_METRIC.findall(dashboard)) | set(_METRIC.findall("\n".join(expressions)))
    assert used, "nothing parsed"
    assert used <= exported, sorted(used - exported)
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    assert {"WasmWizHighErrorRate", "WasmWizHighLatency", "WasmWizSaturated"} <= alerts
    assert "WasmWizUsageLogLagging" in alerts
