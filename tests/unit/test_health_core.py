"""Service, Ingress, PVC, Namespace, HPA, APIService and CRD checks on recorded objects."""

from __future__ import annotations

import json
from typing import Any

from agent.engine.health import Health, object_health
from agent.model import HealthStatus
from tests.unit.health_fixtures import condition, recorded

HEALTHY, PROGRESSING, DEGRADED = HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED


def test_load_balancer_service_waits_for_an_address() -> None:
    svc = recorded("service-loadbalancer-pending")
    health = object_health(svc)
    assert health.status is PROGRESSING
    assert "load balancer" in health.message
    svc["status"]["loadBalancer"] = {"ingress": [{"ip": "203.0.113.10"}]}
    assert object_health(svc).status is HEALTHY


def test_cluster_ip_service_is_healthy_at_once() -> None:
    svc = recorded("service-loadbalancer-pending")
    svc["spec"]["type"] = "ClusterIP"
    assert object_health(svc).status is HEALTHY


def ingress(status: dict[str, Any], api_version: str = "networking.k8s.io/v1") -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": "Ingress", "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"rules": [{"host": "shop.example.com"}]}, "status": status}


def test_ingress_waits_for_an_address_in_both_groups() -> None:
    for api_version in ("networking.k8s.io/v1", "extensions/v1beta1"):
        assert object_health(ingress({"loadBalancer": {}}, api_version)).status is PROGRESSING
        ready = ingress({"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}, api_version)
        assert object_health(ready).status is HEALTHY


def test_persistent_volume_claim_phases() -> None:
    pvc = recorded("pvc-pending")
    assert object_health(pvc).status is PROGRESSING
    pvc["status"]["phase"] = "Bound"
    assert object_health(pvc).status is HEALTHY
    pvc["status"]["phase"] = "Lost"
    assert object_health(pvc) == Health(DEGRADED, "The claim lost its volume")
    pvc["status"] = {}
    assert object_health(pvc).status is HealthStatus.UNKNOWN


def test_namespace_is_healthy_until_it_terminates() -> None:
    ns = recorded("namespace-active")
    assert object_health(ns).status is HEALTHY
    ns["status"]["phase"] = "Terminating"
    assert object_health(ns) == Health(PROGRESSING, "Namespace is terminating")


def test_hpa_that_cannot_read_metrics_is_degraded() -> None:
    health = object_health(recorded("hpa-v2-failed-get-resource-metric"))
    assert health.status is DEGRADED
    assert "failed to get cpu utilization" in health.message


def test_hpa_able_to_scale_is_healthy_and_without_conditions_waits() -> None:
    hpa = recorded("hpa-v2-failed-get-resource-metric")
    hpa["status"]["conditions"] = [
        condition("AbleToScale", "True", "ReadyForNewScale", "recommended size matches current size"),
        condition("ScalingActive", "True", "ValidMetricFound", "the HPA was able to compute the replica count"),
        condition("ScalingLimited", "False", "DesiredWithinRange", "the desired count is within the range"),
    ]
    assert object_health(hpa) == Health(HEALTHY, "recommended size matches current size")
    hpa["status"]["conditions"] = []
    assert object_health(hpa) == Health(PROGRESSING, "Waiting to Autoscale")


def test_autoscaling_v1_hpa_reads_conditions_from_its_annotation() -> None:
    hpa = recorded("hpa-v2-failed-get-resource-metric")
    hpa["apiVersion"] = "autoscaling/v1"
    del hpa["status"]["conditions"]
    assert object_health(hpa).status is PROGRESSING
    failing = [condition("AbleToScale", "False", "FailedGetScale", "deployments/scale not found")]
    hpa["metadata"]["annotations"] = {"autoscaling.alpha.kubernetes.io/conditions": json.dumps(failing)}
    assert object_health(hpa) == Health(DEGRADED, "deployments/scale not found")
    hpa["metadata"]["annotations"]["autoscaling.alpha.kubernetes.io/conditions"] = "not json"
    health = object_health(hpa)
    assert health.status is HealthStatus.UNKNOWN and "is not JSON" in health.message


def api_service(conditions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"}, "spec": {"group": "metrics.k8s.io"},
            "status": {"conditions": conditions}}


def test_api_service_is_healthy_when_available() -> None:
    assert object_health(api_service([])) == Health(PROGRESSING, "Waiting to be processed")
    down = api_service([condition("Available", "False", "MissingEndpoints", "endpoints for service not found")])
    assert object_health(down) == Health(PROGRESSING, "MissingEndpoints: endpoints for service not found")
    up = api_service([condition("Available", "True", "Passed", "all checks passed")])
    assert object_health(up) == Health(HEALTHY, "Passed: all checks passed")


def test_established_crd_is_healthy() -> None:
    assert object_health(recorded("crd-established")) == Health(HEALTHY, "CRD is healthy")


def test_crd_not_established_is_degraded_but_installing_is_progressing() -> None:
    crd = recorded("crd-established")
    established = next(c for c in crd["status"]["conditions"] if c["type"] == "Established")
    established.update(status="False", reason="Installing", message="the initial names have been accepted")
    assert object_health(crd).status is PROGRESSING
    established.update(reason="NotAccepted", message="not all names are accepted")
    assert object_health(crd) == Health(DEGRADED, "CRD is not established: not all names are accepted")


def test_crd_with_names_conflict_or_being_deleted() -> None:
    crd = recorded("crd-established")
    names = next(c for c in crd["status"]["conditions"] if c["type"] == "NamesAccepted")
    names.update(status="False", reason="PluralConflict", message='"widgets" is already in use')
    assert object_health(crd).status is DEGRADED
    crd["status"]["conditions"].append(condition("Terminating", "True", "InstanceDeletionInProgress", "deleting"))
    assert object_health(crd).status is PROGRESSING
    crd["status"]["conditions"] = []
    assert object_health(crd) == Health(PROGRESSING, "Status conditions not found")
