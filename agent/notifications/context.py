"""What conditions and templates see: an app shaped like an Argo CD `Application`. Pure.

    app.metadata.name / namespace / labels / annotations / deletionTimestamp
    app.spec.project, app.spec.source.repoURL / targetRevision / path, app.spec.sources ([]),
    app.spec.destination.server / namespace, app.spec.syncPolicy
    app.status.sync.status / revision, app.status.health.status, app.status.conditions,
    app.status.operationState.phase / message / startedAt / finishedAt / syncResult.revision
    app.status.history, app.status.resources, app.status.reconciledAt
    context.*   the `[notifications] context` table (e.g. `argocdUrl`)

Built from the app's definition (an AppSpec, or later an adopted Application) and its
AppState: nothing is read from anywhere else. Times are RFC 3339 in UTC, as Argo CD writes
them. `operationState` is the sync in progress, else the latest one of the history, else
None (`nil`). Before the first reconcile, sync and health status are empty, as they are on
a new Argo CD Application (so `on-sync-status-unknown` does not fire for an app that has
not been looked at yet).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent.model import (
    AppState,
    AppStatus,
    Condition,
    ConditionType,
    HealthStatus,
    HistoryEntry,
    ObjectRef,
    OperationPhase,
    ResourceState,
    Revision,
    SyncOperation,
    SyncPolicy,
    SyncStatus,
    SyncTrigger,
)

IN_CLUSTER = "https://kubernetes.default.svc"
DEFAULT_PROJECT = "default"


class AppDefinition(Protocol):
    """What the context reads of an application's definition (AppSpec has all of it)."""

    @property
    def name(self) -> str: ...
    @property
    def repo(self) -> str: ...
    @property
    def revision(self) -> str: ...
    @property
    def path(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def sync_policy(self) -> SyncPolicy: ...
    @property
    def labels(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def annotations(self) -> tuple[tuple[str, str], ...]: ...


def timestamp(seconds: float | None) -> str | None:
    return None if seconds is None else _rfc3339(int(seconds))


@functools.lru_cache(maxsize=4096)  # the same history times are formatted at every decision
def _rfc3339(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def app_context(app: AppDefinition, state: AppState, *, deleted_at: float | None = None) -> dict[str, Any]:
    """The `app` value conditions and templates see."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": app.name,
            "namespace": "",
            "labels": dict(app.labels),
            "annotations": dict(app.annotations),
            "deletionTimestamp": timestamp(deleted_at),
        },
        "spec": _spec(app),
        "status": _status(state),
    }


def _spec(app: AppDefinition) -> dict[str, Any]:
    policy = app.sync_policy
    automated = {"prune": policy.prune, "selfHeal": policy.self_heal, "allowEmpty": policy.allow_empty}
    return {
        "project": DEFAULT_PROJECT,
        "source": {"repoURL": app.repo, "targetRevision": app.revision, "path": app.path},
        "sources": [],
        "destination": {"server": IN_CLUSTER, "namespace": app.namespace},
        "syncPolicy": {
            "automated": automated if policy.automated else None,
            "syncOptions": sorted(policy.options),
            "retry": {"limit": policy.retry.limit},
        },
    }


def _status(state: AppState) -> dict[str, Any]:
    status = state.status
    looked_at = status.reconciled_at is not None
    return {
        "sync": {"status": status.sync_status.value if looked_at else "",
                 "revision": status.revision.sha if status.revision else ""},
        "health": {"status": status.health_status.value if looked_at else ""},
        "conditions": [{"type": c.type.value, "message": c.message} for c in status.conditions],
        "operationState": operation_state(state),
        "history": [_history(entry) for entry in state.history],
        "resources": [_resource(resource) for resource in status.resources],
        "reconciledAt": timestamp(status.reconciled_at),
    }


def operation_state(state: AppState) -> dict[str, Any] | None:
    """The sync in progress, else the latest finished one, as Argo CD's `status.operationState`."""
    operation = state.operation
    if operation is not None:
        return _operation(phase=OperationPhase.RUNNING.value, message=operation.message,
                          started=operation.started, finished=None, revision=operation.revision.sha,
                          automated=not operation.manual)
    if not state.history:
        return None
    latest = state.history[0]
    return _operation(phase=latest.phase.value, message=_finished_message(latest, state.status),
                      started=latest.started, finished=latest.finished, revision=latest.revision,
                      automated=latest.trigger in (SyncTrigger.AUTO, SyncTrigger.WEBHOOK))


def _operation(*, phase: str, message: str, started: float, finished: float | None, revision: str,
               automated: bool) -> dict[str, Any]:
    return {
        "phase": phase,
        "message": message,
        "startedAt": timestamp(started),
        "finishedAt": timestamp(finished),
        "syncResult": {"revision": revision},
        "operation": {"sync": {"revision": revision}, "initiatedBy": {"automated": automated}},
    }


def _finished_message(entry: HistoryEntry, status: AppStatus) -> str:
    if entry.phase is OperationPhase.SUCCEEDED:
        return "successfully synced"
    errors = [c.message for c in status.conditions if c.type is ConditionType.SYNC_ERROR]
    return errors[0] if errors else status.message


def _history(entry: HistoryEntry) -> dict[str, Any]:
    return {"id": entry.id, "revision": entry.revision, "deployStartedAt": timestamp(entry.started),
            "deployedAt": timestamp(entry.finished), "phase": entry.phase.value,
            "initiatedBy": {"automated": entry.trigger in (SyncTrigger.AUTO, SyncTrigger.WEBHOOK)}}


def _resource(resource: ResourceState) -> dict[str, Any]:
    ref = resource.ref
    return {"group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name,
            "status": resource.sync_status.value,
            "health": {"status": resource.health_status.value, "message": resource.health_message}}


# ---------------------------------------------------------------- the sample checked at load


class AnyKey(dict[str, Any]):
    """A map with every key: labels, annotations and `context` of the sample app, whose keys are the
    user's to choose. The values are not empty, so `{% if context.argocdUrl %}` branches are checked."""

    def __missing__(self, key: str) -> str:
        return f"sample-{key}"


@dataclass(frozen=True)
class _SampleApp:
    name: str = "payment-service-prod"
    repo: str = "https://git.example.com/payments/gitops.git"
    revision: str = "main"
    path: str = "apps/payment-service/overlays/production"
    namespace: str = "payments"
    sync_policy: SyncPolicy = field(default_factory=lambda: SyncPolicy(prune=True, self_heal=True))
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


def sample_contexts(context: Mapping[str, str]) -> list[dict[str, Any]]:
    """Apps with every field filled (one with a finished sync and one with a sync in progress), for
    checking conditions and templates at load."""
    sha = "0123456789abcdef0123456789abcdef01234567"
    revision = Revision(sha, "main", "Jane Doe <jane@example.com>", "Deploy payment-service v1.3.0", 1.7e9)
    ref = ObjectRef("apps", "Deployment", "payments", "payment-service")
    status = AppStatus(
        name="payment-service-prod", sync_status=SyncStatus.OUT_OF_SYNC, health_status=HealthStatus.DEGRADED,
        revision=revision, message="one or more objects failed to apply",
        conditions=(Condition(ConditionType.SYNC_ERROR, "Deployment/payments/payment-service: invalid"),),
        operation_phase=OperationPhase.FAILED, reconciled_at=1.7e9 + 60,
        resources=(ResourceState(ref, SyncStatus.OUT_OF_SYNC, HealthStatus.DEGRADED, "progress deadline exceeded"),),
    )
    entry = HistoryEntry(1, sha, revision.author, revision.message, SyncTrigger.AUTO, 1.7e9, 1.7e9 + 30,
                         OperationPhase.FAILED, failed=1)
    finished = AppState(name=status.name, status=status, history=(entry,))
    running = AppState(name=status.name, status=status, history=(entry,),
                       operation=SyncOperation(revision, SyncTrigger.AUTO, prune=True, manual=False, started=1.7e9))
    app = _SampleApp()
    return [{"app": _with_any_keys(app_context(app, state, deleted_at=1.7e9 + 90)), "context": AnyKey(context)}
            for state in (finished, running)]


def _with_any_keys(app: dict[str, Any]) -> dict[str, Any]:
    metadata = app["metadata"]
    metadata["labels"], metadata["annotations"] = AnyKey(), AnyKey()
    return app
