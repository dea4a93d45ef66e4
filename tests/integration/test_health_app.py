"""App health on the real cluster: the worst of its resources, read from the live objects, and as
the API and /metrics report it (with a `[[health_checks]]` override, through the agent process)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from agent.config import AppSpec
from agent.controller.reconcile import ReconcileResult
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.model import HealthStatus, SyncPolicy
from agent.runtime import build_controller
from tests.integration.health_helpers import CustomKind, custom_kind, ready
from tests.integration.helpers import configmap, deployment, eventually, settings_for
from tests.support.agent import StartAgent, application_toml
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.metrics import sample_value

CLAIM = yaml.safe_dump({
    "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
})


def stuck_deployment(name: str) -> str:
    """A Deployment whose pod no node accepts, giving up after one second."""
    obj = yaml.safe_load(deployment(name))
    obj["spec"]["progressDeadlineSeconds"] = 1
    obj["spec"]["template"]["spec"]["nodeSelector"] = {"gitops-agent.io/no-such-node": "true"}
    return yaml.safe_dump(obj)


def healths(result: ReconcileResult) -> dict[str, HealthStatus]:
    return {f"{r.ref.kind}/{r.ref.name}": r.health_status for r in result.status.resources}


async def test_app_health_is_the_worst_of_its_live_resources(
    tmp_path: Path, cluster: LocalCluster, kube: KubeClient, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    repo.commit_and_push({"app/settings.yaml": configmap("settings", {"LOG_LEVEL": "info"}),
                          "app/web.yaml": deployment("web", replicas=2), "app/claim.yaml": CLAIM}, "first")
    # A short health timeout: the claim never binds here, and the sync should not wait five minutes for it.
    name = f"shop-{secrets.token_hex(3)}"
    spec = AppSpec(name=name, repo=git_server.url(repo.name), revision="main", path="app", namespace=namespace,
                   sync_policy=SyncPolicy(health_timeout=1.0))
    metrics = Metrics()
    controller = build_controller(settings_for([spec], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig),
                                  kube, metrics)

    async def reconcile(until: Callable[[ReconcileResult], bool], what: str) -> ReconcileResult:
        seen: list[ReconcileResult | None] = [None]

        async def probe() -> ReconcileResult | None:
            controller.request_refresh(name)
            seen[0] = await controller.reconcile_once(name)
            return seen[0] if seen[0] is not None and seen[0].error is None and until(seen[0]) else None

        try:
            return await eventually(probe, within=30, what=what)
        except AssertionError as exc:
            last = seen[0]
            raise AssertionError(f"{exc}; last reconcile: error={last and last.error} "
                                 f"health={last and healths(last)}") from None

    result = await reconcile(lambda r: healths(r)["Deployment/web"] is HealthStatus.HEALTHY, "web to be Healthy")
    assert healths(result) == {"ConfigMap/settings": HealthStatus.HEALTHY, "Deployment/web": HealthStatus.HEALTHY,
                               "PersistentVolumeClaim/data": HealthStatus.PROGRESSING}
    assert result.status.health_status is HealthStatus.PROGRESSING
    status = controller.status(name)
    assert status is not None and status.health_status is HealthStatus.PROGRESSING
    claim = next(r for r in status.resources if r.ref.kind == "PersistentVolumeClaim")
    assert (claim.health_status, claim.health_message) == (
        HealthStatus.PROGRESSING, "Waiting for the claim to be bound to a volume",
    )
    assert sample_value(metrics, "gitops_agent_app_health_status", name=name, health_status="Progressing") == 1

    # Deleted behind the agent's back, with nothing to put it back: the app shows it Missing.
    await kube.delete({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "settings", "namespace": namespace}})
    manual = replace(spec, sync_policy=SyncPolicy(automated=False, health_timeout=1.0))
    by_hand = build_controller(settings_for([manual], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig),
                               kube, Metrics())
    result = await by_hand.reconcile_once(name)
    assert result is not None and healths(result)["ConfigMap/settings"] is HealthStatus.MISSING
    assert result.status.health_status is HealthStatus.MISSING

    repo.commit_and_push({"app/stuck.yaml": stuck_deployment("stuck")}, "a deployment that cannot roll out")
    result = await reconcile(lambda r: r.status.health_status is HealthStatus.DEGRADED, "the app to be Degraded")
    assert healths(result)["Deployment/stuck"] is HealthStatus.DEGRADED
    assert healths(result)["ConfigMap/settings"] is HealthStatus.HEALTHY  # the new revision's sync put it back
    stuck = next(r for r in result.status.resources if r.ref.name == "stuck")
    assert "exceeded its progress deadline" in stuck.health_message


# ------------------------------------------------------------------ through the agent process


@pytest.fixture
async def widgets(kube: KubeClient) -> AsyncIterator[CustomKind]:
    async with custom_kind(kube) as kind:
        yield kind


async def test_agent_reports_resource_health_with_configured_reasons_in_api_and_metrics(
    start_agent: StartAgent, git_server: GitServer, repo: WorkTree, namespace: str, widgets: CustomKind,
) -> None:
    # Unique: the app's label selects across namespaces, and earlier tests' namespaces linger while terminating.
    name = f"shop-{secrets.token_hex(3)}"
    widget = widgets.widget("orders", namespace, size=3)
    manifest = widgets.widget("orders", "", size=3)
    manifest["metadata"].pop("namespace")
    repo.commit_and_push({"app/web.yaml": deployment("web"), "app/widget.yaml": yaml.safe_dump(manifest)}, "first")
    agent = await start_agent(
        f'[[health_checks]]\ngroup = "{widgets.group}"\nkind = "Widget"\ndegraded_reasons = ["QuotaExceeded"]\n\n'
        + application_toml(name, git_server.url(repo.name), namespace=namespace, path="app", revision="main")
    )

    async def app_health(expected: str) -> Any:
        try:
            await agent.post(f"/api/v1/applications/{name}/refresh")
        except aiohttp.ClientConnectionError:
            return None  # not listening yet
        app = await agent.app(name)
        return app if app and app["health_status"] == expected else None

    app = await eventually(lambda: app_health("Healthy"), within=30, interval=0.3, what="the app to be Healthy")
    by_kind = {r["kind"]: r for r in app["resources"]}
    assert by_kind["Widget"]["health_status"] == "Healthy" and by_kind["Deployment"]["health_status"] == "Healthy"

    # Ready=False for a reason the rule does not list: still working on it.
    await widgets.set_status(widget, {"conditions": [ready("False", "Scaling", "adding 2 widgets")]})
    app = await eventually(lambda: app_health("Progressing"), within=15, interval=0.3, what="Progressing")
    row = next(r for r in app["resources"] if r["kind"] == "Widget")
    assert (row["health_status"], row["health_message"]) == ("Progressing", "Ready=False: Scaling: adding 2 widgets")

    await widgets.set_status(widget, {"conditions": [ready("False", "QuotaExceeded", "no room")]})
    await eventually(lambda: app_health("Degraded"), within=15, interval=0.3, what="Degraded")
    status, listed = await agent.get_json("/api/v1/applications")
    assert status == 200 and [a["health_status"] for a in listed] == ["Degraded"]

    metrics = await agent.metrics()
    series = {line.split("{", 1)[1].split("}", 1)[0]: float(line.rsplit(" ", 1)[1])
              for line in metrics.splitlines() if line.startswith("gitops_agent_app_health_status{")}
    assert series[f'health_status="Degraded",name="{name}"'] == 1.0
    assert sum(series.values()) == 1.0 and len(series) == len(HealthStatus)
