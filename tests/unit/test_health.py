from typing import Any

from agent.engine.health import aggregate, object_health
from agent.model import HealthStatus


def deployment(
    *, replicas: int = 2, generation: int = 1, status: dict[str, Any] | None = None, paused: bool = False
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "api", "namespace": "p", "generation": generation},
        "spec": {"replicas": replicas, "paused": paused},
        "status": status or {},
    }


def rolled_out(replicas: int = 2, generation: int = 1) -> dict[str, Any]:
    return {
        "observedGeneration": generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "availableReplicas": replicas,
    }


def test_rolled_out_deployment_is_healthy() -> None:
    assert object_health(deployment(status=rolled_out())).status is HealthStatus.HEALTHY


def test_deployment_whose_generation_is_not_observed_is_progressing() -> None:
    health = object_health(deployment(generation=2, status=rolled_out(generation=1)))
    assert health.status is HealthStatus.PROGRESSING
    assert "observed generation" in health.message


def test_deployment_with_unavailable_replicas_is_progressing() -> None:
    status = {**rolled_out(), "availableReplicas": 1}
    health = object_health(deployment(status=status))
    assert (health.status, health.message) == (HealthStatus.PROGRESSING, "1 of 2 updated replicas are available")


def test_deployment_past_progress_deadline_is_degraded() -> None:
    status = {
        **rolled_out(),
        "updatedReplicas": 0,
        "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
    }
    assert object_health(deployment(status=status)).status is HealthStatus.DEGRADED


def test_paused_deployment_is_suspended() -> None:
    assert object_health(deployment(paused=True)).status is HealthStatus.SUSPENDED


def test_missing_object_is_missing_and_unknown_kinds_are_healthy() -> None:
    assert object_health(None).status is HealthStatus.MISSING
    assert object_health({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}).status is (
        HealthStatus.HEALTHY
    )


def test_a_check_that_cannot_decide_is_unknown_not_an_exception() -> None:
    broken = deployment()
    broken["status"] = {"observedGeneration": "one"}
    health = object_health(broken)
    assert health.status is HealthStatus.UNKNOWN
    assert "health check failed" in health.message


def test_app_health_is_the_worst_resource_health() -> None:
    assert aggregate([]) is HealthStatus.HEALTHY
    assert aggregate([HealthStatus.HEALTHY, HealthStatus.DEGRADED, HealthStatus.PROGRESSING]) is (HealthStatus.DEGRADED)
    assert HealthStatus.MISSING.is_worse(HealthStatus.PROGRESSING)
    assert not HealthStatus.SUSPENDED.is_worse(HealthStatus.PROGRESSING)
