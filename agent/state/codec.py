"""What is kept per app, and its JSON form: plain dicts and lists, stable keys, no pickles.

`to_dict` functions return fresh containers built from frozen data, so the result may
be serialized in another thread while the controller goes on. `from_dict` functions
raise `RecordError` on anything malformed; the caller drops that one app's record.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.model import (
    AppliedVersion,
    AppStatus,
    AutoSyncPause,
    Change,
    ChangeAction,
    ChangeSet,
    Condition,
    ConditionType,
    HealthStatus,
    HistoryEntry,
    InventoryEntry,
    LastSync,
    ObjectRef,
    OperationPhase,
    ResourceState,
    Revision,
    SyncStatus,
    SyncTrigger,
)

Kind = tuple[str, str]  # (apiVersion, kind)


class RecordError(ValueError):
    """A stored record does not have the shape this version writes."""


@dataclass(frozen=True)
class AppRecord:
    """Everything the agent remembers about one app across restarts."""

    status: AppStatus
    last_sync: LastSync | None = None  # what the automated policy decides retries from
    tracked_sha: str = ""  # the commit the app's tracked revision resolved to last
    kinds: frozenset[Kind] = frozenset()  # kinds the app used: listed to find prune candidates
    inventory: tuple[InventoryEntry, ...] = ()
    applied: Mapping[ObjectRef, AppliedVersion] = field(default_factory=dict)
    history: tuple[HistoryEntry, ...] = ()  # newest first


# ------------------------------------------------------------------ small parts


def _ref(ref: ObjectRef) -> list[str]:
    return [ref.group, ref.kind, ref.namespace, ref.name]


def _ref_from(value: Any) -> ObjectRef:
    if not isinstance(value, list) or len(value) != 4 or not all(isinstance(v, str) for v in value):
        raise RecordError(f"not an object identity: {value!r}")
    return ObjectRef(*value)


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
        "changes": [[*_ref(c.ref), c.action.value, c.message] for c in status.changes.entries],
        "reconciled_at": status.reconciled_at,
        "resources": [[*_ref(r.ref), r.sync_status.value, r.health_status.value, r.health_message]
                      for r in status.resources],
        "paused": _pause(status.paused),
    }


def status_from_dict(data: Mapping[str, Any]) -> AppStatus:
    try:
        phase = data["operation_phase"]
        return AppStatus(
            name=str(data["name"]),
            sync_status=SyncStatus(data["sync_status"]),
            health_status=HealthStatus(data["health_status"]),
            revision=_revision_from(data["revision"]),
            message=str(data["message"]),
            conditions=tuple(Condition(ConditionType(t), str(m)) for t, m in data["conditions"]),
            operation_phase=OperationPhase(phase) if phase is not None else None,
            changes=ChangeSet(tuple(Change(_ref_from(c[:4]), ChangeAction(c[4]), str(c[5]))
                                    for c in data["changes"])),
            reconciled_at=None if data["reconciled_at"] is None else float(data["reconciled_at"]),
            resources=tuple(ResourceState(_ref_from(r[:4]), SyncStatus(r[4]), HealthStatus(r[5]), str(r[6]))
                            for r in data["resources"]),
            paused=_pause_from(data["paused"]),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise RecordError(f"status: {type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------ history


def history_to_dict(entry: HistoryEntry) -> dict[str, Any]:
    return {
        "id": entry.id, "revision": entry.revision, "author": entry.author, "message": entry.message,
        "trigger": entry.trigger.value, "started": entry.started, "finished": entry.finished,
        "phase": entry.phase.value, "created": entry.created, "configured": entry.configured,
        "pruned": entry.pruned, "failed": entry.failed,
    }


def history_from_dict(data: Mapping[str, Any]) -> HistoryEntry:
    try:
        return HistoryEntry(
            id=int(data["id"]), revision=str(data["revision"]), author=str(data["author"]),
            message=str(data["message"]), trigger=SyncTrigger(data["trigger"]), started=float(data["started"]),
            finished=float(data["finished"]), phase=OperationPhase(data["phase"]), created=int(data["created"]),
            configured=int(data["configured"]), pruned=int(data["pruned"]), failed=int(data["failed"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RecordError(f"history: {type(exc).__name__}: {exc}") from exc


# ------------------------------------------------------------------ the whole record


def record_to_dict(record: AppRecord) -> dict[str, Any]:
    last = record.last_sync
    return {
        "status": status_to_dict(record.status),
        "last_sync": None if last is None else {"revision": last.revision, "phase": last.phase.value,
                                                "attempts": last.attempts, "finished": last.finished},
        "tracked_sha": record.tracked_sha,
        "kinds": sorted([api_version, kind] for api_version, kind in record.kinds),
        "inventory": [[entry.api_version, *_ref(entry.ref)] for entry in record.inventory],
        "applied": [[*_ref(ref), proof.fingerprint, proof.resource_version, proof.live_digest]
                    for ref, proof in sorted(record.applied.items())],
        "history": [history_to_dict(entry) for entry in record.history],
    }


def record_from_dict(data: Mapping[str, Any]) -> AppRecord:
    try:
        last = data["last_sync"]
        return AppRecord(
            status=status_from_dict(data["status"]),
            last_sync=None if last is None else LastSync(str(last["revision"]), OperationPhase(last["phase"]),
                                                         int(last["attempts"]), float(last["finished"])),
            tracked_sha=str(data["tracked_sha"]),
            kinds=frozenset((str(api_version), str(kind)) for api_version, kind in data["kinds"]),
            inventory=tuple(InventoryEntry(str(item[0]), _ref_from(item[1:])) for item in data["inventory"]),
            applied={_ref_from(item[:4]): AppliedVersion(*(str(value) for value in item[4:7]))
                     for item in data["applied"]},
            history=tuple(history_from_dict(entry) for entry in data["history"]),
        )
    except RecordError:
        raise
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise RecordError(f"{type(exc).__name__}: {exc}") from exc
