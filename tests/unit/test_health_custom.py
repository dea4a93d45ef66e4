"""Custom resources: the default Ready/Available rule, and `[[health_checks]]` overrides."""

from __future__ import annotations

from typing import Any

import pytest

from agent.config import HealthCheckSpec, parse_settings
from agent.engine.health import Health, HealthAssessor, object_health
from agent.errors import ConfigError
from agent.model import HealthStatus
from tests.unit.health_fixtures import condition

HEALTHY, PROGRESSING, DEGRADED = HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED


def widget(status: dict[str, Any] | None = None, *, generation: int = 1) -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "shop.example.com/v1", "kind": "Widget",
                           "metadata": {"name": "w", "namespace": "shop", "generation": generation},
                           "spec": {"size": 3}}
    if status is not None:
        obj["status"] = status
    return obj


def test_custom_resource_without_status_is_healthy() -> None:
    assert object_health(widget()) == Health(HEALTHY)
    assert object_health(widget({})) == Health(HEALTHY)


def test_ready_true_is_healthy_and_false_is_degraded_with_reason() -> None:
    assert object_health(widget({"conditions": [condition("Ready", "True", "Reconciled", "all good")]})) == (
        Health(HEALTHY, "all good")
    )
    failing = widget({"conditions": [condition("Ready", "False", "QuotaExceeded", "no more widgets")]})
    assert object_health(failing) == Health(DEGRADED, "Ready=False: QuotaExceeded: no more widgets")
    unknown = widget({"conditions": [condition("Ready", "Unknown", "Reconciling")]})
    assert object_health(unknown).status is PROGRESSING


def test_available_is_read_when_there_is_no_ready_condition() -> None:
    assert object_health(widget({"conditions": [condition("Available", "False", "Down")]})).status is DEGRADED
    both = widget({"conditions": [condition("Available", "False"), condition("Ready", "True")]})
    assert object_health(both).status is HEALTHY


def test_status_without_ready_or_available_is_healthy() -> None:
    assert object_health(widget({"conditions": [condition("Synced", "False")], "phase": "x"})).status is HEALTHY


def test_custom_resource_whose_spec_is_not_observed_yet_is_progressing() -> None:
    stale = widget({"observedGeneration": 1, "conditions": [condition("Ready", "True")]}, generation=2)
    assert object_health(stale) == Health(
        PROGRESSING, "Waiting for the controller to observe generation 2 (observed 1)",
    )
    stale_condition = widget({"conditions": [condition("Ready", "True", observedGeneration=1)]}, generation=2)
    assert object_health(stale_condition).status is PROGRESSING


def test_unknown_core_kinds_without_status_are_healthy() -> None:
    assert object_health({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}).status is HEALTHY
    assert object_health({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}).status is HEALTHY


def test_override_names_the_condition_and_its_absence_means_progressing() -> None:
    rule = HealthCheckSpec(group="shop.example.com", kind="Widget", condition="Synced")
    assessor = HealthAssessor([rule])
    assert assessor.assess(widget()) == Health(PROGRESSING, "Waiting for condition Synced")
    assert assessor.assess(widget({"conditions": [condition("Ready", "True")]})).status is PROGRESSING
    assert assessor.assess(widget({"conditions": [condition("Synced", "True")]})).status is HEALTHY
    assert assessor.assess(widget({"conditions": [condition("Synced", "False", "Error")]})).status is DEGRADED


def test_override_degraded_reasons_make_other_failures_progressing() -> None:
    rule = HealthCheckSpec(group="shop.example.com", kind="Widget", degraded_reasons=("QuotaExceeded",))
    assessor = HealthAssessor([rule])
    waiting = widget({"conditions": [condition("Ready", "False", "DependencyNotReady", "waiting for db")]})
    assert assessor.assess(waiting) == Health(PROGRESSING, "Ready=False: DependencyNotReady: waiting for db")
    failing = widget({"conditions": [condition("Ready", "False", "QuotaExceeded")]})
    assert assessor.assess(failing).status is DEGRADED
    assert assessor.assess(widget()).status is HEALTHY  # no explicit condition: the default rule for no status


def test_override_progressing_reasons_win() -> None:
    rule = HealthCheckSpec(group="shop.example.com", kind="*", progressing_reasons=("Progressing",))
    assessor = HealthAssessor([rule])
    assert assessor.assess(widget({"conditions": [condition("Ready", "False", "Progressing")]})).status is (
        PROGRESSING
    )
    assert assessor.assess(widget({"conditions": [condition("Ready", "False", "Broken")]})).status is DEGRADED
    other_group = widget({"conditions": [condition("Ready", "False", "Progressing")]})
    other_group["apiVersion"] = "other.example.com/v1"
    assert assessor.assess(other_group).status is DEGRADED


def test_override_replaces_a_built_in_check() -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "status": {"conditions": [condition("Complete", "True")]}}
    assert object_health(job).status is HEALTHY
    rule = HealthCheckSpec(group="batch", kind="Job", condition="Verified")
    assert object_health(job, [rule]) == Health(PROGRESSING, "Waiting for condition Verified")


def test_health_checks_config_is_parsed_and_checked() -> None:
    settings = parse_settings({"health_checks": [
        {"group": "shop.example.com", "kind": "Widget", "condition": "Synced",
         "degraded_reasons": ["QuotaExceeded"], "progressing_reasons": ["Waiting"]},
        {"group": "cert-manager.io", "kind": "*"},
    ]}, file="agent.toml")
    assert settings.health_checks == (
        HealthCheckSpec(kind="Widget", group="shop.example.com", condition="Synced",
                        degraded_reasons=("QuotaExceeded",), progressing_reasons=("Waiting",)),
        HealthCheckSpec(kind="*", group="cert-manager.io"),
    )


@pytest.mark.parametrize(("entry", "problem"), [
    ({"kind": "Widget", "conditon": "Ready"}, "health_checks[0].conditon: unknown key"),
    ({"group": "shop.example.com"}, "health_checks[0].kind: is required"),
    ({"kind": "Widget", "degraded_reasons": "Failed"}, "health_checks[0].degraded_reasons: must be an array"),
    ({"kind": "Widget", "progressing_reasons": [1]}, "health_checks[0].progressing_reasons: must be an array of"),
])
def test_health_checks_config_errors_name_file_table_and_key(entry: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=r"^agent\.toml: ") as raised:
        parse_settings({"health_checks": [entry]}, file="agent.toml")
    assert problem in str(raised.value)


def test_two_health_checks_for_one_kind_are_an_error() -> None:
    with pytest.raises(ConfigError, match=r"health_checks\[1\]\.kind: shop.example.com/Widget already has"):
        parse_settings({"health_checks": [{"group": "shop.example.com", "kind": "Widget"}] * 2}, file="a.toml")
