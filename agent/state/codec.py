"""An app's state in JSON form: plain dicts and lists, stable keys, no pickles.

`to_dict` functions return fresh containers built from frozen data, so the result may
be serialized in another thread while the controller goes on. `from_dict` functions
raise `RecordError` on anything malformed; the caller drops that one app's record.
"""

from __future__ import annotations

from collections.abc import Mapping
from sys import intern
from typing import Any

from agent.model import (
    IN_CLUSTER,
    Adopted,
    AdoptedChild,
    AppliedVersion,
    AppState,
    AppStatus,
    AutoSyncPause,
    Change,
    ChangeAction,
    ChangeReason,
    ChangeSet,
    Condition,
    ConditionType,
    HealthStatus,
    HistoryEntry,
    HookRun,
    HookType,
    InventoryEntry,
    LastSync,
    Manifest,
    ObjectRef,
    OperationPhase,
    ResourceState,
    Revision,
    SyncOperation,
    SyncStatus,
    SyncTrigger,
)


class RecordError(ValueError):
    """A stored record does not have the shape this version writes."""


# ------------------------------------------------------------------ small parts


def _ref(ref: ObjectRef) -> list[str]:
    return [ref.group, ref.kind, ref.namespace, ref.name]


def _ref_from(value: Any) -> ObjectRef:
    if not isinstance(value, list) or len(value) != 4 or not all(isinstance(v, str) for v in value):
        raise RecordError(f"not an object identity: {value!r}")
    return ObjectRef(*map(intern, value))  # shared with every other copy of the same identity


def _resource(resource: ResourceState) -> list[Any]:
    return [*_ref(resource.ref), resource.sync_status.value, resource.health_status.value, resource.health_message]


def _resource_from(value: Any) -> ResourceState:
    return ResourceState(_ref_from(value[:4]), SyncStatus(value[4]), HealthStatus(value[5]), str(value[6]))


def _revision(revision: Revision | None) -> dict[str, Any] | None:
    if revision is None:
        return None
    return {"sha": revision.sha, "ref": revision.ref, "author": revision.author, "message": revision.message,
            "committed_at": revision.committed_at}


def _revision_from(data: Any) -> Revision | None:
    if data is None:
        return None
    return Revision(str(data["sha"]), str(data["ref"]), str(data["author"]), str(data["message"]),
                    float(data["committed_at"]))


def _pause(pause: AutoSyncPause | None) -> dict[str, Any] | None:
    return None if pause is None else {"reason": pause.reason, "tracked_sha": pause.tracked_sha,
                                       "since": pause.since}


def _pause_from(data: Any) -> AutoSyncPause | None:
    return None if data is None else AutoSyncPause(str(data["reason"]), str(data["tracked_sha"]),
                                                   float(data["since"]))


def _hook(run: HookRun) -> list[Any]:
    return [run.phase.value, *_ref(run.template), *_ref(run.ref), run.api_version, run.wave, run.status.value,
            run.message, run.deleted]


def _hook_from(value: Any) -> HookRun:
    if not isinstance(value, list) or len(value) != 14:
        raise RecordError(f"not a hook run: {value!r}")
    return HookRun(HookType(value[0]), _ref_from(value[1:5]), _ref_from(value[5:9]), str(value[9]), int(value[10]),
                   OperationPhase(value[11]), str(value[12]), bool(value[13]))


# ------------------------------------------------------------------ status


def status_to_dict(status: AppStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "sync_status": status.sync_status.value,
        "health_status": status.health_status.value,
        "revision": _revision(status.revision),
        "message": status.message,
        "conditions": [[c.type.value, c.message] for c in status.conditions],
        "operation_phase": status.operation_phase.value if status.operation_phase else None,
        "changes": [[*_ref(c.ref), c.action.value, c.message, c.reason.value if c.reason else None]
                    for c in status.changes.entries],
        "reconciled_at": status.reconciled_at,
        "resources": [_resource(r) for r in status.resources],
    }


def status_from_dict(data: Mapping[str, Any], *, name: str) -> AppStatus:
    try:
        phase = data["operation_phase"]
        return AppStatus(
            name=name,
            sync_status=SyncStatus(data["sync_status"]),
            health_status=HealthStatus(data["health_status"]),
            revision=_revision_from(data["revision"]),
            message=str(data["message"]),
            conditions=tuple(Condition(ConditionType(t), str(m)) for t, m in data["conditions"]),
            operation_phase=OperationPhase(phase) if phase is not None else None,
            changes=ChangeSet(tuple(Change(_ref_from(c[:4]), ChangeAction(c[4]), str(c[5]),
                                           ChangeReason(c[6]) if len(c) > 6 and c[6] else None)
                                    for c in data["changes"])),
            reconciled_at=None if data["reconciled_at"] is None else float(data["reconciled_at"]),
            resources=tuple(_resource_from(r) for r in data["resources"]),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise RecordError(f"status: {type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------ history


def history_to_dict(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "revision": entry.revision, "author": entry.author, "message": entry.message,
        "trigger": entry.trigger.value, "started": entry.started, "finished": entry.finished,
        "phase": entry.phase.value, "created": entry.created, "configured": entry.configured,
        "pruned": entry.pruned, "failed": entry.failed, "initiated_by": entry.initiated_by,
        "hooks": [_hook(run) for run in entry.hooks],
    }


def history_from_dict(data: Mapping[str, Any]) -> HistoryEntry:
    try:
        return HistoryEntry(
            id=int(data["id"]), revision=str(data["revision"]), author=str(data["author"]),
            message=str(data["message"]), trigger=SyncTrigger(data["trigger"]), started=float(data["started"]),
            finished=float(data["finished"]), phase=OperationPhase(data["phase"]), created=int(data["created"]),
            configured=int(data["configured"]), pruned=int(data["pruned"]), failed=int(data["failed"]),
            initiated_by=str(data.get("initiated_by", "")),  # absent in snapshots written before it existed
            hooks=tuple(_hook_from(run) for run in data.get("hooks", ())),  # absent before hooks existed
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"history: {type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------ the sync in progress


def _operation(operation: SyncOperation | None) -> dict[str, Any] | None:
    """What a restart needs to carry on: the revision, trigger and options, the hooks run so far (a
    finished one is not run again) and a failure whose SyncFail hooks run. It plans afresh."""
    if operation is None:
        return None
    return {"revision": _revision(operation.revision), "trigger": operation.trigger.value,
            "prune": operation.prune, "manual": operation.manual, "started": operation.started,
            "initiated_by": operation.initiated_by,
            "hooks": [_hook(run) for run in operation.hooks], "failure": operation.failure,
            "resources": [_ref(ref) for ref in operation.resources]}


def _operation_from(data: Any) -> SyncOperation | None:
    if data is None:
        return None
    revision = _revision_from(data["revision"])
    if revision is None:
        raise RecordError("operation: no revision")
    # Snapshots written before hooks and selective syncs have none of their keys.
    return SyncOperation(revision, SyncTrigger(data["trigger"]), bool(data["prune"]), bool(data["manual"]),
                         float(data["started"]), initiated_by=str(data.get("initiated_by", "")),
                         hooks=tuple(_hook_from(run) for run in data.get("hooks", ())),
                         failure=str(data.get("failure", "")),
                         resources=tuple(_ref_from(ref) for ref in data.get("resources", ())))


# ------------------------------------------------------------------ what a parent adopted


def _adopted(adopted: Adopted | None) -> dict[str, Any] | None:
    """The definitions as rendered and each child's Application: a restart runs the children from them."""
    if adopted is None:
        return None
    return {
        "definitions": [[manifest.source, manifest.index, manifest.obj] for manifest in adopted.definitions],
        "children": [{"name": child.name, "source": child.source, "file": child.file, "origin": child.origin,
                      "definition": child.definition, "refusal": child.refusal, "project": child.project}
                     for child in adopted.children],
        "resources": [_resource(resource) for resource in adopted.resources],
        "conditions": [[c.type.value, c.message] for c in adopted.conditions],
        "in_sync": adopted.in_sync,
    }


def _adopted_from(data: Any) -> Adopted | None:
    if data is None:
        return None
    try:
        definitions = tuple(Manifest(dict(obj), str(source), int(index)) for source, index, obj in data["definitions"])
        children = tuple(AdoptedChild(name=str(c["name"]), source=str(c["source"]), file=str(c["file"]),
                                      origin=str(c["origin"]), definition=dict(c["definition"]),
                                      refusal=str(c["refusal"]), project=str(c.get("project", "")))
                         for c in data["children"])
        return Adopted(definitions=definitions, children=children,
                       resources=tuple(_resource_from(r) for r in data["resources"]),
                       conditions=tuple(Condition(ConditionType(t), str(m)) for t, m in data["conditions"]),
                       in_sync=bool(data["in_sync"]))
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise RecordError(f"adopted: {type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------ the whole state


def state_to_dict(state: AppState) -> dict[str, Any]:
    """The app's state without what is transient (see AppState)."""
    last = state.last_sync
    return {
        "status": status_to_dict(state.status),
        "last_sync": None if last is None else {"revision": last.revision, "phase": last.phase.value,
                                                "attempts": last.attempts, "finished": last.finished},
        "tracked_sha": state.tracked_sha,
        "kinds": sorted([api_version, kind] for api_version, kind in state.kinds),
        "inventory": [[entry.api_version, *_ref(entry.ref)] for entry in state.inventory],
        "applied": [[*_ref(ref), proof.fingerprint, proof.resource_version, proof.live_digest]
                    for ref, proof in sorted(state.applied.items())],
        "history": [history_to_dict(entry) for entry in state.history],
        "pause": _pause(state.pause),
        "operation": _operation(state.operation),
        "cluster": state.cluster,
        "notified": None if state.notified is None else dict(sorted(state.notified.items())),
        "adopted": _adopted(state.adopted),
    }


def _notified_from(data: Any) -> dict[str, str] | None:
    """Notification marks; None (never evaluated) for a snapshot written before they existed."""
    if data is None:
        return None
    if not isinstance(data, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        raise RecordError(f"notified: not a map of trigger to text: {data!r}")
    return dict(data)


def state_from_dict(name: str, data: Mapping[str, Any]) -> AppState:
    """The state a snapshot kept for app `name`. Snapshots written before pauses and operations had
    keys of their own keep the pause in the status; those written before notifications have no marks."""
    try:
        last = data["last_sync"]
        status = data["status"]
        return AppState(
            name=name,
            status=status_from_dict(status, name=name),
            last_sync=None if last is None else LastSync(str(last["revision"]), OperationPhase(last["phase"]),
                                                         int(last["attempts"]), float(last["finished"])),
            tracked_sha=str(data["tracked_sha"]),
            kinds=frozenset((str(api_version), str(kind)) for api_version, kind in data["kinds"]),
            inventory=tuple(InventoryEntry(str(item[0]), _ref_from(item[1:])) for item in data["inventory"]),
            applied={_ref_from(item[:4]): AppliedVersion(*(str(value) for value in item[4:7]))
                     for item in data["applied"]},
            history=tuple(history_from_dict(entry) for entry in data["history"]),
            pause=_pause_from(data["pause"] if "pause" in data else status.get("paused")),
            operation=_operation_from(data.get("operation")),
            cluster=str(data.get("cluster", IN_CLUSTER)),  # snapshots from before [[clusters]]: the home cluster
            notified=_notified_from(data.get("notified")),
            adopted=_adopted_from(data.get("adopted")),  # absent before Argo CD definitions were adopted
        )
    except RecordError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise RecordError(f"{type(exc).__name__}: {exc}") from exc
