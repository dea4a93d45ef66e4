"""What holds for every kind: missing objects, objects being deleted, checks that cannot decide, app health."""

from __future__ import annotations

from agent.engine.health import CHECKS, Health, aggregate, object_health
from agent.model import HealthStatus
from tests.unit.health_fixtures import recorded


def test_missing_object_is_missing() -> None:
    assert object_health(None) == Health(HealthStatus.MISSING, "object does not exist")


def test_object_being_deleted_is_progressing_whatever_its_kind() -> None:
    for name in ("deployment-healthy", "job-complete", "namespace-active"):
        obj = recorded(name)
        obj["metadata"]["deletionTimestamp"] = "2026-11-26T06:30:00Z"
        assert object_health(obj) == Health(HealthStatus.PROGRESSING, "Pending deletion"), name


def test_hook_being_deleted_is_assessed_normally() -> None:
    job = recorded("job-complete")
    job["metadata"].update(deletionTimestamp="2026-11-26T06:30:00Z", finalizers=["argocd.argoproj.io/hook-finalizer"])
    assert object_health(job).status is HealthStatus.HEALTHY


def test_a_check_that_cannot_decide_is_unknown_not_an_exception() -> None:
    broken = recorded("deployment-healthy")
    broken["status"]["observedGeneration"] = "one"
    assert object_health(broken) == Health(
        HealthStatus.UNKNOWN, "health check failed: status.observedGeneration is 'one', not an integer",
    )
    for bad_status in (["not", "a", "mapping"], "text", 3):
        for name in ("deployment-healthy", "pod-running-ready", "pvc-pending", "crd-established"):
            obj = recorded(name)
            obj["status"] = bad_status
            assert object_health(obj).status is HealthStatus.UNKNOWN, (name, bad_status)


def test_every_built_in_check_survives_an_empty_object() -> None:
    for group, kind in CHECKS:
        api_version = f"{group}/v1" if group else "v1"
        health = object_health({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}})
        assert isinstance(health.status, HealthStatus), (group, kind)


def test_app_health_is_the_worst_resource_health() -> None:
    assert aggregate([]) is HealthStatus.HEALTHY
    assert aggregate([HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.PROGRESSING]) is HealthStatus.DEGRADED
    assert aggregate([HealthStatus.SUSPENDED, HealthStatus.HEALTHY]) is HealthStatus.SUSPENDED
    assert aggregate([HealthStatus.MISSING, HealthStatus.PROGRESSING]) is HealthStatus.MISSING
    assert aggregate([HealthStatus.UNKNOWN, HealthStatus.DEGRADED]) is HealthStatus.UNKNOWN
    assert HealthStatus.MISSING.is_worse(HealthStatus.PROGRESSING)
    assert not HealthStatus.SUSPENDED.is_worse(HealthStatus.PROGRESSING)
