"""Health checks against objects the real control plane (with kwok nodes) drives through their lives."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.config import HealthCheckSpec
from agent.engine.health import Health, HealthAssessor, object_health
from agent.kube import KubeClient
from agent.model import HealthStatus, KubeObject
from tests.integration.health_helpers import CustomKind, custom_kind, ready
from tests.integration.helpers import eventually

HEALTHY, PROGRESSING, DEGRADED = HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED


def deployment(name: str, namespace: str, *, replicas: int = 2, **pod_spec: Any) -> KubeObject:
    labels = {"app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "main", "image": "registry.example.com/app:v1"}],
                                       **pod_spec}}},
    }


async def health_of(kube: KubeClient, obj: KubeObject, assessor: HealthAssessor | None = None) -> Health:
    return (assessor or HealthAssessor()).assess(await kube.get(obj))


async def reaches(kube: KubeClient, obj: KubeObject, status: HealthStatus, *, within: float = 15.0,
                  assessor: HealthAssessor | None = None) -> Health:
    async def probe() -> Health | None:
        health = await health_of(kube, obj, assessor)
        return health if health.status is status else None

    return await eventually(probe, within=within, what=f"{obj['kind']} {obj['metadata']['name']} to be {status}")


async def test_deployment_rolls_out_to_healthy(kube: KubeClient, namespace: str) -> None:
    web = deployment("web", namespace)
    await kube.apply(web)
    assert (await health_of(kube, web)).status in (PROGRESSING, HEALTHY)
    await reaches(kube, web, HEALTHY)
    live = await kube.get(web)
    assert live is not None and live["status"]["availableReplicas"] == 2


async def test_unschedulable_deployment_is_progressing_then_degraded_after_its_deadline(
    kube: KubeClient, namespace: str
) -> None:
    # No node has this label, so the pod stays Pending; the deployment controller gives up after
    # progressDeadlineSeconds. 1 s is the smallest it accepts; 2 s leaves room to see Progressing first.
    stuck = deployment("stuck", namespace, replicas=1, nodeSelector={"gitops-agent.io/no-such-node": "true"})
    stuck["spec"]["progressDeadlineSeconds"] = 2
    await kube.apply(stuck)
    early = await health_of(kube, stuck)
    assert early.status is PROGRESSING, early
    health = await reaches(kube, stuck, DEGRADED, within=20)
    assert health.message.startswith('Deployment "stuck" exceeded its progress deadline'), health.message


async def test_job_completes_healthy(kube: KubeClient, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate", "namespace": namespace},
        "spec": {"backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.example.com/migrate:v1"}],
        }}},
    }
    await kube.apply(job)
    await reaches(kube, job, HEALTHY)


async def test_suspended_job_is_suspended(kube: KubeClient, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "later", "namespace": namespace},
        "spec": {"suspend": True, "template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.example.com/migrate:v1"}],
        }}},
    }
    await kube.apply(job)
    await reaches(kube, job, HealthStatus.SUSPENDED)


async def test_persistent_volume_claim_without_a_provisioner_stays_pending(kube: KubeClient, namespace: str) -> None:
    claim = {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }
    await kube.apply(claim)
    for _ in range(2):
        health = await health_of(kube, claim)
        assert health.status is PROGRESSING, health
    assert object_health(None).status is HealthStatus.MISSING


# ------------------------------------------------------------------ custom resources


@pytest.fixture
async def widgets(kube: KubeClient) -> AsyncIterator[CustomKind]:
    async with custom_kind(kube) as kind:
        yield kind


async def test_crd_becomes_established_and_healthy(kube: KubeClient, widgets: CustomKind) -> None:
    assert await health_of(kube, widgets.crd) == Health(HEALTHY, "CRD is healthy")


async def test_custom_resource_follows_its_ready_condition(
    kube: KubeClient, namespace: str, widgets: CustomKind
) -> None:
    widget = widgets.widget("w", namespace, size=3)
    await kube.apply(widget)
    assert await health_of(kube, widget) == Health(HEALTHY)  # no status yet: nothing to judge

    await widgets.set_status(widget, {"observedGeneration": 1,
                                      "conditions": [ready("True", "Reconciled", "3 widgets running")]})
    assert await health_of(kube, widget) == Health(HEALTHY, "3 widgets running")

    await widgets.set_status(widget, {"conditions": [ready("False", "QuotaExceeded", "no room for widgets")]})
    assert await health_of(kube, widget) == Health(DEGRADED, "Ready=False: QuotaExceeded: no room for widgets")

    await kube.apply(widgets.widget("w", namespace, size=4))  # generation 2; the status still speaks of 1
    assert (await health_of(kube, widget)).status is PROGRESSING

    await widgets.set_status(widget, {"observedGeneration": 2, "conditions": [ready("False", "Scaling")]})
    assert (await health_of(kube, widget)).status is DEGRADED
    rule = HealthCheckSpec(group=widgets.group, kind="Widget", degraded_reasons=("QuotaExceeded",))
    assert (await health_of(kube, widget, HealthAssessor([rule]))).status is PROGRESSING
