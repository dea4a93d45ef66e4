"""Identities, revisions, statuses and change sets: the vocabulary every layer speaks. Pure data."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from sys import intern
from typing import Any

KubeObject = dict[str, Any]
Kind = tuple[str, str]  # (apiVersion, kind): one resource type as manifests name it


@dataclass(frozen=True, order=True, slots=True)
class ObjectRef:
    """The identity of a Kubernetes object: group, kind, namespace and name.

    Slotted, and its strings interned when read from an object: with ten thousand apps there are
    hundreds of thousands of these (watch cache, plans, statuses, inventories, proofs, claims),
    each read from a freshly parsed object with strings of its own."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: KubeObject) -> ObjectRef:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        meta = obj.get("metadata") or {}
        return cls(intern(group), intern(str(obj.get("kind", ""))), intern(str(meta.get("namespace") or "")),
                   intern(str(meta.get("name", ""))))

    def __str__(self) -> str:
        parts = [self.kind, self.namespace, self.name] if self.namespace else [self.kind, self.name]
        return "/".join(parts)


@dataclass(frozen=True)
class Revision:
    """A resolved commit, with what an auditor wants to see next to it."""

    sha: str
    ref: str = ""
    author: str = ""
    message: str = ""
    committed_at: float = 0.0


class SyncStatus(enum.StrEnum):
    SYNCED = "Synced"
    OUT_OF_SYNC = "OutOfSync"
    UNKNOWN = "Unknown"


class HealthStatus(enum.StrEnum):
    """Health, ordered from best to worst as Argo CD orders it."""

    HEALTHY = "Healthy"
    SUSPENDED = "Suspended"
    PROGRESSING = "Progressing"
    MISSING = "Missing"
    DEGRADED = "Degraded"
    UNKNOWN = "Unknown"

    @property
    def rank(self) -> int:
        return _HEALTH_ORDER.index(self)

    def is_worse(self, other: HealthStatus) -> bool:
        return self.rank > other.rank


_HEALTH_ORDER = list(HealthStatus)


class OperationPhase(enum.StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    ERROR = "Error"


class ChangeAction(enum.StrEnum):
    CREATED = "created"
    CONFIGURED = "configured"
    UNCHANGED = "unchanged"
    PRUNED = "pruned"
    SKIPPED = "skipped"
    FAILED = "failed"


_ACTIONS = tuple(action.value for action in ChangeAction)  # iterating an enum is slow; counts() runs per app per read


class ChangeReason(enum.StrEnum):
    """Why an object was skipped or how a change came about, as data: what counts as "requires
    pruning" is read from here, never parsed out of a message."""

    REQUIRES_PRUNING = "RequiresPruning"  # not deleted although Git dropped it: pruning off, Prune=false, …
    IGNORED = "Ignored"  # not deleted and not counted: IgnoreExtraneous, or not this app's object
    EARLIER_WAVE_FAILED = "EarlierWaveFailed"  # not applied: a wave before it failed
    ALREADY_GONE = "AlreadyGone"  # pruned, but someone had deleted it already
    CHANGED_MEANWHILE = "ChangedMeanwhile"  # not deleted: it was replaced or re-created since it was seen
    NOT_APPLIED = "NotApplied"  # not applied: another app owns it, adopting is refused, or `hook: Skip`


@dataclass(frozen=True, slots=True)
class Change:
    ref: ObjectRef
    action: ChangeAction
    message: str = ""
    reason: ChangeReason | None = None


@dataclass(frozen=True)
class ChangeSet:
    """What one sync did to each object; logs, metrics, status and the API read it."""

    entries: tuple[Change, ...] = ()

    def counts(self) -> dict[str, int]:
        counted = dict.fromkeys(_ACTIONS, 0)
        for entry in self.entries:
            counted[entry.action.value] += 1
        return counted

    def failed(self) -> tuple[Change, ...]:
        return tuple(e for e in self.entries if e.action is ChangeAction.FAILED)

    @property
    def requires_pruning(self) -> int:
        return sum(1 for e in self.entries if e.reason is ChangeReason.REQUIRES_PRUNING)


class ConditionType(enum.StrEnum):
    COMPARISON_ERROR = "ComparisonError"
    SYNC_ERROR = "SyncError"
    SHARED_RESOURCE_WARNING = "SharedResourceWarning"
    ORPHANED_RESOURCE_WARNING = "OrphanedResourceWarning"
    INVALID_SPEC_ERROR = "InvalidSpecError"
    UNKNOWN_ERROR = "UnknownError"  # Argo CD's name for a failure it did not anticipate
    # Ours (Argo CD shows sync windows apart from conditions): an automated sync was due and a
    # project's sync window holds it; the message names the window and when syncs may run again.
    SYNC_WINDOW_WARNING = "SyncWindowWarning"


@dataclass(frozen=True)
class Condition:
    type: ConditionType
    message: str


@dataclass(frozen=True, slots=True)
class ResourceState:
    """One desired object as the last reconcile saw it: in sync or not, and how healthy, and why."""

    ref: ObjectRef
    sync_status: SyncStatus
    health_status: HealthStatus
    health_message: str = ""


class SyncTrigger(enum.StrEnum):
    """What started a sync: the poll (or a refresh), a git webhook, a person, or a rollback."""

    AUTO = "auto"
    WEBHOOK = "webhook"
    MANUAL = "manual"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Manifest:
    """One rendered object and where it came from, for messages. Shared with the render cache: do
    not mutate `obj`."""

    obj: KubeObject
    source: str
    index: int

    @property
    def origin(self) -> str:
        return f"{self.source} (document {self.index + 1})"
