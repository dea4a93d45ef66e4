"""What a comparison or a sync means for the app's status: resources, conditions, sync status. Pure.

The reconciler hands in what it observed (a plan, live objects, what a sync did) and gets
back the values the API, metrics and logs show; nothing here reads the cluster or git.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from agent.engine.diff import unified_diff
from agent.engine.health import Health, aggregate
from agent.model import (
    Action,
    AppStatus,
    ChangeAction,
    ChangeSet,
    Condition,
    ConditionType,
    HealthStatus,
    IgnoreDifference,
    KubeObject,
    LastSync,
    ObjectRef,
    OperationPhase,
    Plan,
    ResourceState,
    Revision,
    SyncOperation,
    SyncStatus,
)

HealthCheck = Callable[[KubeObject | None], Health]
_IN_SYNC = (ChangeAction.CREATED, ChangeAction.CONFIGURED, ChangeAction.UNCHANGED)


def resource_states(plan: Plan, live: Mapping[ObjectRef, KubeObject], changes: ChangeSet | None,
                    assess: HealthCheck) -> tuple[ResourceState, ...]:
    """Every desired object with its sync status (after `changes`, when a sync ran: an object it did
    not touch, as in a selective sync, keeps the comparison's verdict) and its health."""
    touched = {c.ref: c.action for c in changes.entries} if changes is not None else {}
    states = []
    for obj in plan.objects:
        action = touched.get(obj.ref)
        in_sync = action in _IN_SYNC if action is not None else (obj.action is Action.UNCHANGED)
        health = assess(live.get(obj.ref))
        states.append(ResourceState(obj.ref, SyncStatus.SYNCED if in_sync else SyncStatus.OUT_OF_SYNC,
                                    health.status, health.message))
    return tuple(states)


def reassessed(resources: Iterable[ResourceState], live: Mapping[ObjectRef, KubeObject],
               assess: HealthCheck) -> tuple[ResourceState, ...]:
    """The same resources with their health read again from `live` (absent: Missing)."""
    result = []
    for resource in resources:
        health = assess(live.get(resource.ref))
        result.append(replace(resource, health_status=health.status, health_message=health.message))
    return tuple(result)


def diffs(plan: Plan, ignore: Iterable[IgnoreDifference]) -> dict[ObjectRef, str]:
    """What applying would change, per object that differs (Secret values redacted)."""
    rules = tuple(ignore)
    return {obj.ref: unified_diff(obj.ref, obj.live, obj.predicted if obj.live is not None else obj.desired, rules)
            for obj in plan.to_apply}


def conditions(plan: Plan, *, sync_failed: str = "", window: str = "") -> tuple[Condition, ...]:
    """The plan's warnings (SharedResourceWarning, unsupported annotations); SyncError for a failed sync,
    and for a plan any sync of it would fail with (its refusal: an object the project does not permit,
    an empty render), so the reason shows before a sync is tried and stays after; SyncWindowWarning
    when a sync window holds an automated sync that was due."""
    found = list(plan.warnings)
    failure = sync_failed or plan.refusal
    if failure:
        found.append(Condition(ConditionType.SYNC_ERROR, failure))
    if window:
        found.append(Condition(ConditionType.SYNC_WINDOW_WARNING, window))
    return tuple(found)


def compared(previous: AppStatus, *, revision: Revision, plan: Plan, resources: tuple[ResourceState, ...],
             conditions: tuple[Condition, ...], reason: str, at: float) -> AppStatus:
    """The status after a comparison that synced nothing; `reason` says why not when it differs."""
    out_of_sync = plan.out_of_sync
    messages = []
    if plan.requires_pruning:
        messages.append(f"{len(plan.requires_pruning)} resources require pruning")
    if out_of_sync and reason:
        messages.append(reason)
    return AppStatus(
        name=previous.name, sync_status=SyncStatus.OUT_OF_SYNC if out_of_sync else SyncStatus.SYNCED,
        health_status=aggregate(r.health_status for r in resources), revision=revision,
        message="; ".join(messages), conditions=conditions, operation_phase=previous.operation_phase,
        changes=previous.changes, reconciled_at=at, resources=resources,
    )


def synced(previous: AppStatus, *, revision: Revision, phase: OperationPhase, message: str, changes: ChangeSet,
           resources: tuple[ResourceState, ...], conditions: tuple[Condition, ...], at: float,
           blocked: frozenset[ObjectRef] = frozenset()) -> AppStatus:
    """The status after a sync operation ended. Synced when it succeeded and left nothing out of sync
    (a selective sync may have), objects no sync may apply (`blocked`) apart."""
    pruning = changes.requires_pruning
    messages = [message] if message else []
    if pruning:
        messages.append(f"{pruning} resources require pruning")
    left = any(r.sync_status is not SyncStatus.SYNCED for r in resources if r.ref not in blocked)
    in_sync = phase is OperationPhase.SUCCEEDED and not pruning and not left
    return AppStatus(
        name=previous.name, sync_status=SyncStatus.SYNCED if in_sync else SyncStatus.OUT_OF_SYNC,
        health_status=aggregate(r.health_status for r in resources), revision=revision,
        message="; ".join(messages), conditions=conditions, operation_phase=phase, changes=changes,
        reconciled_at=at, resources=resources,
    )


def running(previous: AppStatus, operation: SyncOperation, *, at: float,
            resources: tuple[ResourceState, ...] | None = None) -> AppStatus:
    """The status while a sync operation is in progress (waiting for a wave's health, say), with the
    health of the objects as they are now when `resources` are known."""
    status = replace(previous, sync_status=SyncStatus.OUT_OF_SYNC, revision=operation.revision,
                     operation_phase=OperationPhase.RUNNING, message=operation.message,
                     changes=ChangeSet(operation.changes), reconciled_at=at)
    if resources is None:
        return status
    return replace(status, resources=resources, health_status=aggregate(r.health_status for r in resources))


def failed(previous: AppStatus, *, error: str, revision: Revision | None, at: float,
           kind: ConditionType = ConditionType.COMPARISON_ERROR, unseen: bool = False) -> AppStatus:
    """A reconcile that could not compare (git, render, API; a spec naming no known cluster: InvalidSpecError;
    a bug: UnknownError): Unknown, the last good revision kept. `unseen`: the app's cluster does not
    answer, so its health is not known either."""
    return replace(previous, sync_status=SyncStatus.UNKNOWN, revision=previous.revision or revision,
                   health_status=HealthStatus.UNKNOWN if unseen else previous.health_status,
                   message=error, conditions=(Condition(kind, error),), reconciled_at=at)


def next_last_sync(last: LastSync | None, *, revision: str, phase: OperationPhase, finished: float,
                   manual: bool) -> LastSync:
    """Count attempts per revision; a manual sync or a new revision starts the count again."""
    same = last is not None and last.revision == revision and not manual
    attempts = last.attempts + 1 if same and last is not None else 1
    return LastSync(revision, phase, attempts, finished)
