"""docs/observability.md is the reference of what monitoring/ and /metrics hold: kept true here."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from prometheus_client.parser import text_string_to_metric_families

from agent.config import AppSpec
from agent.kube import KubeRequest
from agent.metrics import Metrics
from agent.model import AppStatus, Condition, ConditionType, OperationPhase

ROOT = Path(__file__).resolve().parents[2]
DOCS = (ROOT / "docs" / "observability.md").read_text()


def test_every_alert_is_documented_with_its_query() -> None:
    for group in yaml.safe_load((ROOT / "monitoring" / "prometheus-rules.yaml").read_text())["groups"]:
        for rule in group["rules"]:
            assert f"### {rule['alert']}" in DOCS
            assert rule["expr"].strip() in DOCS, rule["alert"]


def test_every_dashboard_panel_is_documented_with_its_queries() -> None:
    dashboard = json.loads((ROOT / "monitoring" / "grafana-dashboard.json").read_text())
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            continue
        assert f"| {panel['title']} |" in DOCS
        exprs = [target["expr"] for target in panel["targets"]]
        assert exprs[0] in DOCS, panel["title"]  # further queries of a panel differ from the first in a number


def test_every_metric_family_is_documented() -> None:
    metrics = Metrics()
    metrics.observe_status(AppStatus(name="a", conditions=(Condition(ConditionType.SYNC_ERROR, "x"),)),
                           app=AppSpec(name="a", repo="https://git.example.com/r.git"))
    metrics.observe_sync("a", OperationPhase.SUCCEEDED, 1.0)
    metrics.observe_kube_request(KubeRequest("get", "ConfigMap", "/api/v1/configmaps", 200))
    metrics.observe_git_request("https://git.example.com/r.git", "fetch", "succeeded", 0.1)
    metrics.observe_render("a", "rendered", 0.1)
    names = {family.name for family in text_string_to_metric_families(metrics.exposition().decode())}
    documented = {name for name in names if f"`{name}" in DOCS or f"`{name}_total`" in DOCS}
    undocumented = {name for name in names - documented if not name.startswith("process_")}
    assert not undocumented
    assert "`metrics_families`" in DOCS
