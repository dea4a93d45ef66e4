"""wave_health: when the sync engine may start the next wave's rules."""

from __future__ import annotations

from typing import Any

from agent.config import HealthCheckSpec
from agent.engine.health import Health, wave_health, wave_status
from agent.model import HealthStatus, ObjectRef
from tests.unit.health_fixtures import recorded


def live(*names: str) -> dict[ObjectRef, dict[str, Any] | None]:
    objects = [recorded(name) for name in names]
    return {ObjectRef.of(obj): obj for obj in objects}


def test_wave_of_healthy_objects_is_done() -> None:
    wave = wave_health(live("deployment-healthy", "job-complete", "pvc-pending")
                       | {ObjectRef("", "ConfigMap", "shop", "c"): {"apiVersion": "v1", "kind": "ConfigMap"}})
    assert (wave.done, wave.failed) == (False, False)
    assert [str(ref) for ref, _ in wave.unhealthy] == ["PersistentVolumeClaim/shop/data"]
    assert wave_health(live("deployment-healthy", "job-complete")).done


def test_degraded_object_fails_the_wave_at_once() -> None:
    wave = wave_health(live("deployment-healthy", "deployment-deadline-exceeded", "pvc-pending"))
    assert wave.failed and not wave.done
    first, health = wave.unhealthy[0]
    assert (str(first), health.status) == ("Deployment/shop/stuck", HealthStatus.DEGRADED)
    assert wave.describe().startswith('Deployment/shop/stuck: Degraded: Deployment "stuck" exceeded')


def test_missing_keeps_the_wave_waiting_and_suspended_does_not() -> None:
    paused = recorded("deployment-healthy")
    paused["spec"]["paused"] = True
    missing = ObjectRef("batch", "Job", "shop", "migrate")
    wave = wave_health({ObjectRef.of(paused): paused, missing: None})
    assert (wave.done, wave.failed) == (False, False)
    assert {health.status for _, health in wave.unhealthy} == {HealthStatus.MISSING}
    assert wave_health({ObjectRef.of(paused): paused}).done


def test_wave_health_uses_configured_rules() -> None:
    widget = {"apiVersion": "shop.example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "shop"}}
    assert wave_health({ObjectRef.of(widget): widget}).done
    rule = HealthCheckSpec(group="shop.example.com", kind="Widget", condition="Ready")
    assert not wave_health({ObjectRef.of(widget): widget}, [rule]).done


def test_describe_lists_worst_first_and_caps_the_list() -> None:
    healths = {ObjectRef("", "ConfigMap", "shop", f"c{i:02}"): Health(HealthStatus.PROGRESSING, "waiting")
               for i in range(12)}
    healths[ObjectRef("", "Pod", "shop", "p")] = Health(HealthStatus.UNKNOWN)
    text = wave_status(healths).describe()
    assert text.startswith("Pod/shop/p: Unknown; ConfigMap/shop/c00: Progressing: waiting")
    assert text.endswith("and 3 more")
    assert wave_status({}).done
