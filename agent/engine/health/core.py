"""Checks for networking, storage and API-machinery kinds: Service, Ingress, PersistentVolumeClaim,
Namespace, HorizontalPodAutoscaler, APIService and CustomResourceDefinition.

The rules follow Argo CD's gitops-engine `pkg/health`.
"""

from __future__ import annotations

import json
from typing import Any

from agent.engine.health._common import (
    Health,
    conditions,
    degraded,
    healthy,
    join,
    progressing,
    section,
    text,
)
from agent.model import HealthStatus, KubeObject

HPA_V1_CONDITIONS = "autoscaling.alpha.kubernetes.io/conditions"

# (type, reason) pairs of an HPA condition that mean it cannot scale at all.
HPA_DEGRADED = frozenset({
    ("AbleToScale", "FailedGetScale"),
    ("AbleToScale", "FailedUpdateScale"),
    ("ScalingActive", "FailedGetResourceMetric"),
    ("ScalingActive", "FailedGetContainerResourceMetric"),
    ("ScalingActive", "FailedGetObjectMetric"),
    ("ScalingActive", "FailedGetPodsMetric"),
    ("ScalingActive", "FailedGetExternalMetric"),
    ("ScalingActive", "InvalidSelector"),
})
HPA_HEALTHY_TYPES = frozenset({"AbleToScale", "ScalingLimited"})


def _has_load_balancer_address(obj: KubeObject) -> bool:
    ingress = (section(obj, "status").get("loadBalancer") or {}).get("ingress") or []
    return isinstance(ingress, list) and len(ingress) > 0


def service_health(obj: KubeObject) -> Health:
    if section(obj, "spec").get("type") == "LoadBalancer" and not _has_load_balancer_address(obj):
        return progressing("Waiting for the load balancer to be assigned an address")
    return healthy()


def ingress_health(obj: KubeObject) -> Health:
    if not _has_load_balancer_address(obj):
        return progressing("Waiting for the ingress controller to assign an address")
    return healthy()


def persistent_volume_claim_health(obj: KubeObject) -> Health:
    phase = section(obj, "status").get("phase")
    if phase == "Bound":
        return healthy()
    if phase == "Pending":
        return progressing("Waiting for the claim to be bound to a volume")
    if phase == "Lost":
        return degraded("The claim lost its volume")
    return Health(HealthStatus.UNKNOWN, f"claim phase is {phase!r}")


def namespace_health(obj: KubeObject) -> Health:
    if section(obj, "status").get("phase") == "Terminating":
        return progressing("Namespace is terminating")
    return healthy()


def horizontal_pod_autoscaler_health(obj: KubeObject) -> Health:
    found = _hpa_conditions(obj)
    for cond in found:
        if (cond.get("type"), cond.get("reason")) in HPA_DEGRADED:
            return degraded(text(cond, "message") or text(cond, "reason"))
    ok = [cond for cond in found if cond.get("type") in HPA_HEALTHY_TYPES and cond.get("status") == "True"]
    if ok:
        return healthy(",".join(text(cond, "message") for cond in ok))
    return progressing("Waiting to Autoscale")


def _hpa_conditions(obj: KubeObject) -> list[dict[str, Any]]:
    """autoscaling/v2 keeps conditions in status; autoscaling/v1 in a JSON annotation."""
    found = conditions(obj)
    if found:
        return found
    annotation = (section(obj, "metadata").get("annotations") or {}).get(HPA_V1_CONDITIONS)
    if not annotation:
        return []
    try:
        decoded = json.loads(annotation)
    except ValueError as exc:
        raise ValueError(f"annotation {HPA_V1_CONDITIONS} is not JSON: {exc}") from exc
    if not isinstance(decoded, list):
        raise ValueError(f"annotation {HPA_V1_CONDITIONS} is not a list")
    return [cond for cond in decoded if isinstance(cond, dict)]


def api_service_health(obj: KubeObject) -> Health:
    for cond in conditions(obj):
        if cond.get("type") == "Available":
            message = join(text(cond, "reason"), text(cond, "message"))
            return healthy(message) if cond.get("status") == "True" else progressing(message)
    return progressing("Waiting to be processed")


def custom_resource_definition_health(obj: KubeObject) -> Health:
    found = {cond.get("type"): cond for cond in conditions(obj)}
    if not found:
        return progressing("Status conditions not found")
    terminating, names, established = found.get("Terminating"), found.get("NamesAccepted"), found.get("Established")
    non_structural = found.get("NonStructuralSchema")
    if terminating is not None and terminating.get("status") == "True":
        return progressing(f"CRD is being terminated: {text(terminating, 'message')}")
    if names is not None and names.get("status") == "False":
        return degraded(f"CRD names have not been accepted: {text(names, 'message')}")
    if established is not None and established.get("reason") == "Installing":
        # The few milliseconds between names accepted and the API being served; Argo CD never
        # sees them because its sync waits for the CRD before assessing it.
        return progressing(f"CRD is being installed: {text(established, 'message')}")
    if established is None or established.get("status") != "True":
        return degraded(f"CRD is not established: {text(established or {}, 'message')}")
    if non_structural is not None and non_structural.get("status") == "True":
        return degraded(f"Schema violations found: {text(non_structural, 'message')}")
    return healthy("CRD is healthy")
