"""The per-app series: what a scrape shows, and that a removed app leaves none behind."""

from __future__ import annotations

from agent.config import AppSpec
from agent.kube import KubeRequest
from agent.metrics import Metrics
from agent.model import AppStatus, HealthStatus, OperationPhase, Revision, SyncStatus
from tests.support.metrics import sample_value


def scrape(metrics: Metrics) -> list[str]:
    return [line for line in metrics.exposition().decode().splitlines() if not line.startswith("#")]


def spec(name: str, namespace: str = "payments") -> AppSpec:
    return AppSpec(name=name, repo="https://git.example.com/payments/gitops.git", namespace=namespace)


def test_a_scrape_shows_each_apps_series_once_and_no_created_series() -> None:
    metrics = Metrics()
    revision = Revision(sha="a" * 40, ref="main")
    for name in ("shop", "ledger"):
        metrics.observe_status(AppStatus(name=name, sync_status=SyncStatus.SYNCED, health_status=HealthStatus.HEALTHY,
                                         revision=revision), app=spec(name),
                               dest_server="https://kubernetes.default.svc")
        metrics.observe_reconcile(name, "synced", 0.2)
        metrics.observe_reconcile(name, "compared", 0.01)
        metrics.observe_sync(name, OperationPhase.SUCCEEDED, 1.5)
        metrics.observe_render(name, "rendered", 0.1)
    lines = scrape(metrics)
    assert f'gitops_agent_app_info{{dest_namespace="payments",dest_server="https://kubernetes.default.svc",' \
           f'health_status="Healthy",name="shop",revision="{"a" * 40}",sync_status="Synced"}} 1.0' in lines
    assert 'gitops_agent_reconcile_total{name="ledger",result="compared"} 1.0' in lines
    assert 'gitops_agent_app_sync_total{name="shop",phase="Succeeded"} 1.0' in lines
    assert 'gitops_agent_render_total{name="shop",result="rendered"} 1.0' in lines
    assert 'gitops_agent_app_out_of_sync_since_timestamp_seconds{name="shop"} 0.0' in lines
    assert "gitops_agent_reconcile_duration_seconds_count 4.0" in lines
    assert "gitops_agent_app_sync_duration_seconds_count 2.0" in lines
    assert not [line for line in lines if "_created" in line]
    assert len([line for line in lines if line.startswith("gitops_agent_app_info{")]) == 2


def test_out_of_sync_since_keeps_the_first_moment_until_synced_again() -> None:
    metrics = Metrics()
    key = {"name": "shop"}
    shop = spec("shop")
    metrics.observe_status(AppStatus(name="shop", sync_status=SyncStatus.OUT_OF_SYNC, reconciled_at=100.0), app=shop)
    metrics.observe_status(AppStatus(name="shop", sync_status=SyncStatus.UNKNOWN, reconciled_at=200.0), app=shop)
    assert sample_value(metrics, "gitops_agent_app_out_of_sync_since_timestamp_seconds", **key) == 100.0
    metrics.observe_status(AppStatus(name="shop", sync_status=SyncStatus.SYNCED, reconciled_at=300.0), app=shop)
    assert sample_value(metrics, "gitops_agent_app_out_of_sync_since_timestamp_seconds", **key) == 0.0
    metrics.observe_status(AppStatus(name="shop", sync_status=SyncStatus.OUT_OF_SYNC, reconciled_at=400.0), app=shop)
    assert sample_value(metrics, "gitops_agent_app_out_of_sync_since_timestamp_seconds", **key) == 400.0


def test_a_forgotten_app_has_no_series_left() -> None:
    metrics = Metrics()
    for name in ("shop", "ledger"):
        metrics.observe_status(AppStatus(name=name), app=spec(name, namespace=name))
        metrics.observe_reconcile(name, "error", 0.1)
        metrics.observe_sync(name, OperationPhase.FAILED, 0.1)
        metrics.observe_sync(name, OperationPhase.SUCCEEDED, 0.1, dry_run=True)
        metrics.observe_render(name, "failed", 0.1)
        with metrics.requests_for(name, dry_run=False):
            metrics.observe_kube_request(KubeRequest("get", "ConfigMap", f"/api/v1/namespaces/{name}/configmaps/a",
                                                     200))
    metrics.forget_app("shop")
    lines = scrape(metrics)
    assert not [line for line in lines if 'name="shop"' in line]
    assert {line.partition("{")[0] for line in lines if 'name="ledger"' in line and line.startswith("argocd_")} == {
        "argocd_app_info", "argocd_app_sync_total", "argocd_app_sync_duration_seconds_total",
        "argocd_app_k8s_request_total"}
    assert [line for line in lines if 'name="ledger"' in line and line.startswith("gitops_agent_")]
