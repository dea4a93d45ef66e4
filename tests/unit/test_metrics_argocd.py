"""Argo CD's metric family: names, labels and meaning as Argo CD's dashboards and alerts read them."""

from __future__ import annotations

import asyncio

from prometheus_client.parser import text_string_to_metric_families

from agent.config import AppSpec
from agent.kube import KubeRequest
from agent.metrics import Metrics
from agent.metrics_argocd import argocd_repo_url, k8s_request_labels
from agent.model import (
    AppStatus,
    Condition,
    ConditionType,
    HealthStatus,
    OperationPhase,
    SyncPolicy,
    SyncStatus,
)
from agent.tasks import TaskSet
from tests.support.metrics import sample_total, samples

SHOP = AppSpec(name="shop", repo="https://deploy:s3cret@Git.Example.com/Payments/GitOps.git", namespace="payments",
               sync_policy=SyncPolicy(automated=True))


def text(metrics: Metrics) -> str:
    return metrics.exposition().decode()


def test_app_info_carries_argo_cds_labels_with_the_apps_status() -> None:
    metrics = Metrics(namespace="gitops")
    metrics.observe_status(AppStatus(name="shop", sync_status=SyncStatus.OUT_OF_SYNC,
                                     health_status=HealthStatus.DEGRADED), app=SHOP)
    assert samples(text(metrics), "argocd_app_info") == [({
        "namespace": "gitops", "name": "shop", "project": "default", "autosync_enabled": "true",
        "repo": "https://git.example.com/payments/gitops", "dest_server": "https://kubernetes.default.svc",
        "dest_namespace": "payments", "sync_status": "OutOfSync", "health_status": "Degraded", "operation": "",
    }, 1.0)]
    metrics.observe_status(AppStatus(name="shop", operation_phase=OperationPhase.RUNNING), app=SHOP)
    [(labels, _)] = samples(text(metrics), "argocd_app_info")  # still one series per app
    assert (labels["operation"], labels["sync_status"], labels["health_status"]) == ("sync", "Unknown", "Unknown")


def test_syncs_are_counted_by_phase_and_dry_run_with_their_seconds_summed() -> None:
    metrics = Metrics()
    metrics.observe_status(AppStatus(name="shop"), app=SHOP)
    metrics.observe_sync("shop", OperationPhase.SUCCEEDED, 2.5)
    metrics.observe_sync("shop", OperationPhase.FAILED, 1.0)
    metrics.observe_sync("shop", OperationPhase.SUCCEEDED, 0.3, dry_run=True)
    scraped = text(metrics)
    assert sample_total(scraped, "argocd_app_sync_total", name="shop", phase="Succeeded", dry_run="false") == 1
    assert sample_total(scraped, "argocd_app_sync_total", name="shop", phase="Succeeded", dry_run="true") == 1
    assert sample_total(scraped, "argocd_app_sync_total", phase="Failed", dest_server="https://kubernetes.default.svc",
                        project="default") == 1
    assert sample_total(scraped, "argocd_app_sync_duration_seconds_total", name="shop") == 3.5
    # a dry run changed nothing: not a sync of our own family
    assert sample_total(scraped, "gitops_agent_app_sync_total", name="shop") == 2


def test_conditions_are_counted_by_type() -> None:
    metrics = Metrics()
    conditions = (Condition(ConditionType.SHARED_RESOURCE_WARNING, "a"),
                  Condition(ConditionType.SHARED_RESOURCE_WARNING, "b"), Condition(ConditionType.SYNC_ERROR, "c"))
    metrics.observe_status(AppStatus(name="shop", conditions=conditions), app=SHOP)
    assert {labels["condition"]: value for labels, value in samples(text(metrics), "argocd_app_condition")} == {
        "SharedResourceWarning": 2, "SyncError": 1}
    metrics.observe_status(AppStatus(name="shop"), app=SHOP)
    assert samples(text(metrics), "argocd_app_condition") == []


def test_reconciles_fill_argo_cds_histogram_with_its_buckets() -> None:
    metrics = Metrics(namespace="gitops")
    for seconds in (0.1, 0.3, 3.0, 20.0):
        metrics.observe_reconcile("shop", "compared", seconds)
    buckets = {labels["le"]: value for labels, value in samples(text(metrics), "argocd_app_reconcile_bucket")
               if labels["namespace"] == "gitops" and labels["dest_server"] == "https://kubernetes.default.svc"}
    assert buckets == {"0.25": 1, "0.5": 2, "1.0": 2, "2.0": 2, "4.0": 3, "8.0": 3, "16.0": 3, "+Inf": 4}


async def test_api_requests_count_for_the_app_whose_reconcile_sent_them() -> None:
    metrics = Metrics()
    metrics.observe_status(AppStatus(name="shop"), app=SHOP)
    tasks = TaskSet()
    tasks.wind_down()  # the task below ends on its own

    async def background() -> None:  # a watch, started during a reconcile: nobody's
        metrics.observe_kube_request(KubeRequest("watch", "ConfigMap", "/api/v1/configmaps", 200))

    async def fanned_out() -> None:  # part of the reconcile
        metrics.observe_kube_request(KubeRequest("get", "ConfigMap", "/api/v1/namespaces/payments/configmaps/a", 404))

    with metrics.requests_for("shop", dry_run=True):
        metrics.observe_kube_request(KubeRequest("patch", "Deployment", "/apis/apps/v1/namespaces/payments/"
                                                 "deployments/api", 200))
        async with asyncio.TaskGroup() as group:
            group.create_task(fanned_out())
        await tasks.spawn("watch", background())
    metrics.observe_kube_request(KubeRequest("put", "Lease", "/apis/coordination.k8s.io/v1/namespaces/gitops/"
                                             "leases/leader", 200))
    found = {(labels["name"], labels["verb"], labels["resource_kind"], labels["resource_namespace"],
              labels["response_code"], labels["dry_run"]): value
             for labels, value in samples(text(metrics), "argocd_app_k8s_request_total")}
    assert found == {
        ("shop", "Patch", "deployments", "payments", "200", "true"): 1,
        ("shop", "Get", "configmaps", "payments", "404", "true"): 1,
        ("", "Watch", "configmaps", "", "200", "false"): 1,
        ("", "Update", "leases", "gitops", "200", "false"): 1,
    }


def test_request_paths_read_as_argo_cd_reads_them() -> None:
    assert k8s_request_labels("get", "/api/v1/namespaces/shop/configmaps") == ("List", "configmaps", "shop")
    assert k8s_request_labels("get", "/api/v1/namespaces/shop/configmaps/a") == ("Get", "configmaps", "shop")
    assert k8s_request_labels("get", "/api/v1/namespaces/shop") == ("Get", "namespaces", "")
    assert k8s_request_labels("get", "/api/v1/namespaces") == ("List", "namespaces", "")
    assert k8s_request_labels("get", "/apis/apps/v1/deployments") == ("List", "deployments", "")
    assert k8s_request_labels("delete", "/apis/rbac.authorization.k8s.io/v1/clusterroles/x") == (
        "Delete", "clusterroles", "")
    assert k8s_request_labels("post", "/api/v1/namespaces") == ("Create", "namespaces", "")
    assert k8s_request_labels("get", "/apis/apps/v1") == ("Get", "", "")  # discovery
    assert k8s_request_labels("get", "/version") == ("Get", "", "")


def test_repository_urls_lose_their_password_and_are_normalized_as_argo_cd_does() -> None:
    assert argocd_repo_url("https://bot:t0ken@GitHub.com/Org/Repo.git") == "https://github.com/org/repo"
    assert argocd_repo_url("git@github.com:org/repo.git") == "github.com/org/repo"  # no user name: it may be a token
    assert argocd_repo_url("ssh://git@github.com:2222/org/repo.git") == "github.com:2222/org/repo"


def test_each_family_can_be_switched_off_and_the_agents_own_health_stays() -> None:
    metrics = Metrics(families=["argocd"])
    metrics.observe_status(AppStatus(name="shop"), app=SHOP)
    metrics.observe_git_request("https://git.example.com/shop.git", "fetch", "succeeded", 0.2)
    metrics.leader.set(1)
    names = {family.name for family in text_string_to_metric_families(text(metrics))}
    assert {"argocd_app_info", "argocd_git_request", "argocd_git_request_duration_seconds", "gitops_agent_leader",
            "gitops_agent_state_write", "process_resident_memory_bytes"} <= names
    assert not {name for name in names if name.startswith("gitops_agent_") and "app" in name}
    assert "gitops_agent_git_request" not in names
    metrics.set_families(["gitops_agent"])
    names = {family.name for family in text_string_to_metric_families(text(metrics))}
    assert "gitops_agent_app_info" in names and "gitops_agent_git_request" in names
    assert not {name for name in names if name.startswith("argocd_")}


def test_a_scrape_is_valid_text_with_each_family_once() -> None:
    metrics = Metrics()
    for index in range(3):
        name = f"app-{index}"
        metrics.observe_status(AppStatus(name=name, conditions=(Condition(ConditionType.SYNC_ERROR, "x"),)),
                               app=AppSpec(name=name, repo='https://git.example.com/a"b\\c.git'))
        metrics.observe_sync(name, OperationPhase.SUCCEEDED, 1.0)
        with metrics.requests_for(name, dry_run=False):
            metrics.observe_kube_request(KubeRequest("patch", "ConfigMap", "/api/v1/namespaces/a/configmaps/b", 200))
    families = [family.name for family in text_string_to_metric_families(text(metrics))]
    assert len(families) == len(set(families))
    [(labels, _), *_] = samples(text(metrics), "argocd_app_info")
    assert labels["repo"] == 'https://git.example.com/a"b\\c'
