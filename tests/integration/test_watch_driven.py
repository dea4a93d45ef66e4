"""The watch cache in the agent: an unchanged app costs no API call, and drift is reverted at once."""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import AppSpec
from agent.controller import Controller
from agent.kube import KubeClient, KubeRequest
from agent.metrics import Metrics
from agent.model import HealthStatus, SyncPolicy, SyncStatus
from agent.runtime import build_controller
from tests.integration.helpers import configmap, deployment, eventually, settings_for
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.metrics import sample_total


class CountingKube:
    """A real KubeClient whose requests are counted by verb."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()

    def observe(self, request: KubeRequest) -> None:
        self.requests[request.verb] += 1


@pytest.fixture
async def agent(tmp_path: Path, cluster: LocalCluster, git_server: GitServer, repo: WorkTree,
                namespace: str) -> AsyncIterator[Any]:
    counter = CountingKube()
    kube = await KubeClient.connect(str(cluster.kubeconfig), observer=counter.observe)
    metrics = Metrics()
    name = f"watched-{secrets.token_hex(3)}"
    spec = AppSpec(name=name, repo=git_server.url(repo.name), revision="main", path="app", namespace=namespace,
                   sync_policy=SyncPolicy(self_heal=True))
    controller = build_controller(settings_for([spec], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig,
                                               poll_interval=3600), kube, metrics)
    yield controller, counter, metrics, name, namespace
    await controller.stop(drain_timeout=2)
    await kube.close()


def renders(metrics: Metrics) -> float:
    return sample_total(metrics, "gitops_agent_render_total")


async def test_an_unchanged_app_is_reconciled_without_api_calls_or_render(agent: Any, repo: WorkTree) -> None:
    controller, counter, metrics, name, _ = agent
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"k": "v"}), "app/api.yaml": deployment("api")}, "one")
    first = await controller.reconcile_once(name)
    assert first.sync is not None and first.sync_status is SyncStatus.SYNCED
    # A sync of one wave does not wait for the rollout; comparisons after it prove the app unchanged
    # and read health from the cache until it is Healthy.
    await eventually(lambda: _healthy(controller, name), what="the app Healthy")
    before_requests, before_renders = sum(counter.requests.values()), renders(metrics)
    for _ in range(3):
        result = await controller.reconcile_once(name)
        assert result.sync_status is SyncStatus.SYNCED and result.sync is None
        assert result.health_status.value == "Healthy"
    assert sum(counter.requests.values()) == before_requests, dict(counter.requests)
    assert renders(metrics) == before_renders


async def _healthy(controller: Any, name: str) -> bool:
    return bool((await controller.reconcile_once(name)).health_status is HealthStatus.HEALTHY)


async def test_a_status_change_reaches_health_without_api_calls(agent: Any, repo: WorkTree,
                                                                kube: KubeClient) -> None:
    controller, counter, _, name, namespace = agent
    service = yaml.safe_dump({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "edge"},
                              "spec": {"type": "LoadBalancer", "ports": [{"port": 443}]}})
    repo.commit_and_push({"app/svc.yaml": service}, "a load balancer")
    status_path = f"/api/v1/namespaces/{namespace}/services/edge/status"

    async def address(ingress: list[dict[str, str]]) -> None:
        # What a cloud controller does (there is none here): only the status changes.
        await kube.request("PATCH", status_path, body={"status": {"loadBalancer": {"ingress": ingress}}},
                           content_type="application/merge-patch+json")

    # One wave, no hooks: the sync ends once applied, health is reported on its own.
    synced = await controller.reconcile_once(name)
    assert synced.sync is not None and synced.health_status is HealthStatus.PROGRESSING
    await address([{"ip": "203.0.113.7"}])
    await eventually(lambda: _healthy(controller, name), what="the app Healthy")
    await address([])
    counter.requests.clear()

    async def progressing() -> bool:
        result = await controller.reconcile_once(name)
        assert result.reused and result.sync is None, "a status change must not cost a comparison"
        return result.health_status is HealthStatus.PROGRESSING

    await eventually(progressing, within=10, interval=0.02, what="the lost address to make the app Progressing")
    assert sum(counter.requests.values()) == 0, dict(counter.requests)


async def test_outside_change_is_reverted_without_waiting_for_the_poll(agent: Any, repo: WorkTree,
                                                                      kube: KubeClient) -> None:
    controller, _, _, name, namespace = agent
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"mode": "declared"})}, "one")
    controller.start()  # loops with a one-hour poll: only the watch can bring the app back
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace}}
    await eventually(lambda: _data_is(kube, ref, "declared"), within=15, what="the first sync")
    await eventually(lambda: _synced(controller, name), within=10, what="the app Synced")
    patched = time.monotonic()
    await kube.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/settings",
                       body={"data": {"mode": "edited by hand"}}, content_type="application/merge-patch+json")
    await eventually(lambda: _data_is(kube, ref, "declared"), within=10, interval=0.02,
                     what="self-heal to revert the outside change")
    print(f"drift reverted {time.monotonic() - patched:.3f}s after the outside patch")


async def _data_is(kube: KubeClient, ref: dict[str, Any], value: str) -> bool:
    live = await kube.get(ref)
    return live is not None and (live.get("data") or {}).get("mode") == value


def _synced(controller: Controller, name: str) -> bool:
    status = controller.status(name)
    return status is not None and status.sync_status is SyncStatus.SYNCED
