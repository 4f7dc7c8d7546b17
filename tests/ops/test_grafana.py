"""The Grafana dashboard loads with Grafana's own schema, and its provisioning finds it.

No Grafana binary is published on the registries our machines reach; grafana-foundation-sdk's
models are generated from Grafana's dashboard and panel schemas (Grafana 11.6). Loading the
dashboard through them and writing it back must lose nothing: a key the schema does not know
(a typo, an option of another panel type, a field from another Grafana version) is dropped
by the load, and shows here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = GRAFANA / "dashboards"
PROVISIONING = GRAFANA / "provisioning"
# Where the provisioning expects deploy/grafana/dashboards/ to be mounted (the docs say so).
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards/wasmwiz"


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DASHBOARDS / "wasmwiz.json").read_text())
    return loaded


def _lost(written: Any, loaded: Any, path: str = "$") -> Iterator[str]:
    """Where `loaded` lacks or changed something of `written`."""
    if isinstance(written, dict):
        if not isinstance(loaded, dict):
            yield f"{path}: {written!r} became {loaded!r}"
            return
        for key, value in written.items():
            if key in loaded:
                yield from _lost(value, loaded[key], f"{path}.{key}")
            else:
                yield f"{path}.{key}: not in the schema"
    elif isinstance(written, list):
        if not isinstance(loaded, list) or len(loaded) != len(written):
            yield f"{path}: {written!r} became {loaded!r}"
            return
        for i, (a, b) in enumerate(zip(written, loaded, strict=True)):
            yield from _lost(a, b, f"{path}[{i}]")
    elif written != loaded:
        yield f"{path}: {written!r} became {loaded!r}"


def _round_trip(written: dict[str, Any]) -> dict[str, Any]:
    register_default_plugins()  # each panel's options and each query by their own schema
    model = Dashboard.from_json(written)
    loaded: dict[str, Any] = json.loads(json.dumps(model, cls=JSONEncoder))
    return loaded


def test_the_dashboard_loads_with_grafanas_schema_losing_nothing() -> None:
    written = _dashboard()
    assert list(_lost(written, _round_trip(written))) == []


def test_the_schema_check_sees_what_grafana_would_drop() -> None:
    written = _dashboard()
    panel = next(p for p in written["panels"] if p["type"] == "timeseries")
    panel["gridpos"] = panel.pop("gridPos")
    panel["options"]["legend"]["placment"] = "bottom"
    panel["targets"][0]["legendFormatt"] = "{{route}}"
    lost = list(_lost(written, _round_trip(written)))
    index = written["panels"].index(panel)
    assert lost == [
        f"$.panels[{index}].options.legend.placment: not in the schema",
        f"$.panels[{index}].targets[0].legendFormatt: not in the schema",
        f"$.panels[{index}].gridpos: not in the schema",
    ]


def test_panels_have_unique_ids_and_tile_the_grid() -> None:
    panels = _dashboard()["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        box = panel["gridPos"]
        assert box["x"] + box["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_every_query_uses_the_data_source_variable() -> None:
    dashboard = _dashboard()
    [variable] = dashboard["templating"]["list"]
    assert (variable["name"], variable["type"], variable["query"]) == (
        "datasource",
        "datasource",
        "prometheus",
    )
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["targets"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"])


def test_provisioning_serves_the_dashboard_from_prometheus() -> None:
    [source] = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())[
        "datasources"
    ]
    assert source["type"] == "prometheus"  # the type the dashboard's variable lists
    assert source["isDefault"] is True  # so the variable starts on it
    providers = yaml.safe_load((PROVISIONING / "dashboards" / "wasmwiz.yaml").read_text())
    assert providers["apiVersion"] == 1
    [provider] = providers["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARDS_MOUNT
    assert sorted(p.name for p in DASHBOARDS.iterdir()) == ["wasmwiz.json"]


@pytest.mark.promtool
@pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool not found (apt-get install --no-install-recommends prometheus)",
)
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    # promtool parses each query as the expression of a recording rule.
    rules = [
        {"record": f"dashboard:panel_{panel['id']}:{target['refId']}", "expr": target["expr"]}
        for panel in _dashboard()["panels"]
        for target in panel.get("targets", [])
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    checked = subprocess.run(
        ["promtool", "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(rules)} rules found" in checked.stdout
