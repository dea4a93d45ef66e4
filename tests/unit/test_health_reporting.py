"""Health as users see it: the per-status metric and per-resource health in the API body."""

from __future__ import annotations

from agent.config import AppSpec
from agent.metrics import Metrics
from agent.model import (
    AppStatus,
    Change,
    ChangeAction,
    ChangeSet,
    HealthStatus,
    ObjectRef,
    ResourceState,
    SyncStatus,
)
from agent.server.app import resource_views
from tests.support.metrics import sample_value

API = ObjectRef("apps", "Deployment", "shop", "api")
DB = ObjectRef("", "PersistentVolumeClaim", "shop", "db")
OLD = ObjectRef("", "ConfigMap", "shop", "old")
SHOP = AppSpec(name="shop", repo="https://git.example.com/shop.git", namespace="shop")


def health_series(metrics: Metrics) -> dict[tuple[str, str], float]:
    return {
        (name, health.value): value
        for name in ("shop", "ledger")
        for health in HealthStatus
        if (value := sample_value(metrics, "gitops_agent_app_health_status", name=name, health_status=health.value))
        is not None
    }


def test_health_metric_has_one_series_per_status_with_the_current_one_at_1() -> None:
    metrics = Metrics()
    metrics.observe_status(AppStatus(name="shop", health_status=HealthStatus.PROGRESSING), app=SHOP)
    series = health_series(metrics)
    assert len(series) == len(HealthStatus)
    assert [key for key, value in series.items() if value == 1] == [("shop", "Progressing")]
    metrics.observe_status(AppStatus(name="shop", health_status=HealthStatus.HEALTHY), app=SHOP)
    assert [key for key, value in health_series(metrics).items() if value == 1] == [("shop", "Healthy")]
    metrics.forget_app("shop")
    assert health_series(metrics) == {}


def test_api_lists_every_desired_resource_with_its_health_and_what_the_sync_did() -> None:
    status = AppStatus(
        name="shop",
        resources=(
            ResourceState(API, SyncStatus.SYNCED, HealthStatus.HEALTHY),
            ResourceState(DB, SyncStatus.SYNCED, HealthStatus.PROGRESSING, "Waiting for the claim to be bound"),
        ),
        changes=ChangeSet((Change(API, ChangeAction.CONFIGURED), Change(OLD, ChangeAction.PRUNED))),
    )
    assert resource_views(status) == [
        {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "api", "sync_status": "Synced",
         "health_status": "Healthy", "health_message": "", "action": "configured", "message": ""},
        {"group": "", "kind": "PersistentVolumeClaim", "namespace": "shop", "name": "db", "sync_status": "Synced",
         "health_status": "Progressing", "health_message": "Waiting for the claim to be bound", "action": None,
         "message": ""},
        {"group": "", "kind": "ConfigMap", "namespace": "shop", "name": "old", "sync_status": None,
         "health_status": None, "health_message": "", "action": "pruned", "message": ""},
    ]
