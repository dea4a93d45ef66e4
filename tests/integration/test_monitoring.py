"""monitoring/: the shipped alerts and dashboard, checked by the real promtool, and a real agent's /metrics."""

from __future__ import annotations

import functools
import json
import re
import secrets
import subprocess
from pathlib import Path
from typing import Any

import yaml

from agent.kube import KubeClient
from tests.integration.helpers import configmap, eventually
from tests.support.agent import StartAgent, application_toml
from tests.support.cluster import REPO_ROOT, cached_binary
from tests.support.gitserver import GitServer, WorkTree
from tests.support.metrics import sample_total, samples

MONITORING = REPO_ROOT / "monitoring"
DEST_SERVER = "https://kubernetes.default.svc"


@functools.cache
def promtool() -> Path:
    return cached_binary("promtool")


def run_promtool(*args: str, stdin: str | None = None, cwd: Path | None = None) -> str:
    proc = subprocess.run([str(promtool()), *args], input=stdin, capture_output=True, text=True, timeout=120,
                          cwd=cwd)
    assert proc.returncode == 0, f"promtool {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout + proc.stderr


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def alert_names() -> list[str]:
    return [rule["alert"] for group in load_yaml(MONITORING / "prometheus-rules.yaml")["groups"]
            for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def as_promql(expr: str) -> str:
    """A dashboard query as Prometheus gets it from Grafana with every variable at `All`."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    return re.sub(r"\$\{?([A-Za-z_]\w*)\}?", ".*", expr)  # `$1` (label_replace) is not a variable


# ---------------------------------------------------------------- the alerts


def test_the_rules_file_passes_promtool_check() -> None:
    out = run_promtool("check", "rules", str(MONITORING / "prometheus-rules.yaml"))
    assert f"SUCCESS: {len(alert_names())} rules found" in out
    assert {"GitOpsAppSyncFailures", "GitOpsAppOutOfSync", "GitOpsAppUnhealthy", "GitOpsAgentStateWriteFailing",
            "GitOpsAgentGitAuthFailing", "GitOpsAgentKubeAPIErrors", "GitOpsAgentConfigReloadRefused",
            "GitOpsAgentNotificationsFailing", "GitOpsAgentLeaderMissing"} == set(alert_names())


def test_every_alert_fires_on_a_series_that_should_and_stays_quiet_on_one_that_should_not() -> None:
    test_files = sorted((MONITORING / "tests").glob("*.yaml"))
    fires: set[str] = set()
    quiet: set[str] = set()
    for path in test_files:
        for case in load_yaml(path)["tests"]:
            for check in case.get("alert_rule_test", []):
                (fires if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert fires == set(alert_names()), "an alert no test sees firing"
    assert quiet == set(alert_names()), "an alert no test sees staying quiet"
    out = run_promtool("test", "rules", *(str(path) for path in test_files))
    assert out.count("SUCCESS") == len(test_files)


def test_the_prometheus_rule_object_holds_the_rules_files_groups() -> None:
    rule = load_yaml(MONITORING / "prometheus-rule.yaml")
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert rule["spec"]["groups"] == load_yaml(MONITORING / "prometheus-rules.yaml")["groups"]


def test_the_kustomization_renders_monitor_rule_and_dashboard() -> None:
    built = subprocess.run([str(cached_binary("kustomize")), "build", str(MONITORING)], capture_output=True,
                           text=True, timeout=60, check=True).stdout
    objects = {obj["kind"]: obj for obj in yaml.safe_load_all(built)}
    assert set(objects) == {"ServiceMonitor", "PrometheusRule", "ConfigMap"}
    assert objects["PrometheusRule"]["spec"] == load_yaml(MONITORING / "prometheus-rule.yaml")["spec"]
    dashboard = objects["ConfigMap"]
    assert dashboard["metadata"]["labels"] == {"grafana_dashboard": "1"}
    assert json.loads(dashboard["data"]["grafana-dashboard.json"]) == json.loads(
        (MONITORING / "grafana-dashboard.json").read_text())


# ---------------------------------------------------------------- the dashboard


def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    assert len(exprs) >= 15
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"dashboard:query_{index}", "expr": as_promql(expr)} for index, expr in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump(rules))
    assert f"SUCCESS: {len(exprs)} rules found" in run_promtool("check", "rules", str(path))


def _app_series(family: str, name: str, sync: str, health: str, instance: str) -> str:
    target = f'namespace="gitops-agent",job="gitops-agent",instance="{instance}"'
    if family == "argocd":
        return (f'argocd_app_info{{{target},name="{name}",project="default",dest_server="{DEST_SERVER}",'
                f'dest_namespace="{name}",repo="https://git.example.com/r",autosync_enabled="true",'
                f'sync_status="{sync}",health_status="{health}",operation=""}}')
    return (f'gitops_agent_app_info{{{target},name="{name}",dest_namespace="{name}",revision="abc",'
            f'sync_status="{sync}",health_status="{health}"}}')


def test_the_application_panels_read_either_family_alike(tmp_path: Path) -> None:
    """Argo CD's names only, ours only, or both: the same answer; a follower's stale series never count."""
    panels = {panel["title"]: panel["targets"][0]["expr"]
              for panel in json.loads((MONITORING / "grafana-dashboard.json").read_text())["panels"]
              if panel.get("targets")}
    expected = {
        "Applications": [("{}", 2)],
        "Sync status": [('{sync_status="Synced"}', 1), ('{sync_status="OutOfSync"}', 1)],
        "Health status": [('{health_status="Healthy"}', 1), ('{health_status="Degraded"}', 1)],
    }
    cases = []
    for families in (("argocd",), ("gitops_agent",), ("argocd", "gitops_agent")):
        series = [{"series": 'gitops_agent_leader{namespace="gitops-agent",job="gitops-agent",instance="a:8080"}',
                   "values": "1x5"},
                  {"series": 'gitops_agent_leader{namespace="gitops-agent",job="gitops-agent",instance="b:8080"}',
                   "values": "0x5"}]
        for family in families:
            series += [{"series": _app_series(family, "shop", "Synced", "Healthy", "a:8080"), "values": "1x5"},
                       {"series": _app_series(family, "ledger", "OutOfSync", "Degraded", "a:8080"), "values": "1x5"},
                       {"series": _app_series(family, "ledger", "Unknown", "Missing", "b:8080"), "values": "1x5"}]
        cases.append({"name": " + ".join(families), "interval": "1m", "input_series": series, "promql_expr_test": [
            {"expr": as_promql(panels[title]), "eval_time": "3m",
             "exp_samples": [{"labels": labels, "value": value} for labels, value in want]}
            for title, want in expected.items()]})
    path = tmp_path / "dashboard-families.yaml"
    path.write_text(yaml.safe_dump({"tests": cases}))
    assert "SUCCESS" in run_promtool("test", "rules", str(path))


# ---------------------------------------------------------------- a real agent's /metrics


async def test_a_real_scrape_passes_promtool_and_shows_argo_cds_series(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str
) -> None:
    name = f"observed-{secrets.token_hex(3)}"
    sha = repo.commit_and_push({"app/settings.yaml": configmap("settings", {"LOG_LEVEL": "info"})}, "settings")
    agent = await start_agent(application_toml(name, git_server.url(repo.name), namespace=namespace, path="app",
                                               revision="main", sync_policy={"automated": "true"}),
                              env={"POD_NAMESPACE": "gitops-test"})
    await eventually(lambda: agent.synced(name, sha), within=30, what="the app Synced")
    scrape = await agent.metrics()
    [(info, _)] = [found for found in samples(scrape, "argocd_app_info") if found[0]["name"] == name]
    assert info == {"namespace": "gitops-test", "name": name, "project": "default", "autosync_enabled": "true",
                    "repo": git_server.url(repo.name).lower().removesuffix(".git"), "dest_server": DEST_SERVER,
                    "dest_namespace": namespace, "sync_status": "Synced", "health_status": "Healthy",
                    "operation": ""}
    assert sample_total(scrape, "argocd_app_sync_total", name=name, phase="Succeeded", dry_run="false") == 1
    assert sample_total(scrape, "gitops_agent_app_sync_total", name=name) == 1
    # The app's own requests (the apply that created its ConfigMap), in its namespace; watches and the
    # inventory's LISTs belong to no app.
    assert sample_total(scrape, "argocd_app_k8s_request_total", name=name, verb="Patch", resource_kind="configmaps",
                        resource_namespace=namespace, response_code="201", dry_run="false") == 1
    assert sample_total(scrape, "argocd_app_k8s_request_total", name="", verb="Watch", resource_kind="configmaps") >= 1
    assert not [labels for labels, _ in samples(scrape, "argocd_app_k8s_request_total")
                if labels["name"] == name and labels["verb"] in ("Watch", "List")]
    assert sample_total(scrape, "argocd_git_request_total", request_type="ls-remote") >= 1
    assert sample_total(scrape, "argocd_git_request_duration_seconds_count", request_type="fetch") >= 1
    assert sample_total(scrape, "argocd_app_reconcile_count", namespace="gitops-test", dest_server=DEST_SERVER) >= 1
    assert sample_total(scrape, "process_resident_memory_bytes") > 0

    # Drift, then a dry run: its comparison's requests count as the dry run's.
    await kube.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/settings",
                       body={"data": {"LOG_LEVEL": "debug"}}, content_type="application/merge-patch+json")

    async def drifted() -> bool:
        app = await agent.app(name)
        return app is not None and app["sync_status"] == "OutOfSync"

    await eventually(drifted, within=10, what="the drift seen")  # the watch cache has the changed object
    status, _ = await agent.post_json(f"/api/v1/applications/{name}/sync", {"dry_run": True})
    assert status == 200
    scrape = await agent.metrics()
    assert sample_total(scrape, "argocd_app_sync_total", name=name, phase="Succeeded", dry_run="true") == 1
    assert sample_total(scrape, "gitops_agent_app_sync_total", name=name) == 1, "a dry run is not a sync of ours"
    assert sample_total(scrape, "argocd_app_k8s_request_total", name=name, verb="Patch", resource_kind="configmaps",
                        dry_run="true") >= 1
    run_promtool("check", "metrics", stdin=scrape)  # the text format, and Prometheus' naming lint
