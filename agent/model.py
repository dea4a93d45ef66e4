"""Plain data shared by every layer: identities, revisions, statuses, change sets.

Nothing here does I/O; everything is immutable or owned by exactly one writer
(the controller sets `AppStatus`).
"""

from __future__ import annotations

import enum
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

KubeObject = dict[str, Any]


@dataclass(frozen=True, order=True)
class ObjectRef:
    """The identity of a Kubernetes object: group, kind, namespace and name."""

    group: str
    kind: str
    namespace: str
    name: str

    @classmethod
    def of(cls, obj: KubeObject) -> ObjectRef:
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        meta = obj.get("metadata") or {}
        return cls(group, str(obj.get("kind", "")), str(meta.get("namespace") or ""), str(meta.get("name", "")))

    def __str__(self) -> str:
        parts = [self.kind, self.namespace, self.name] if self.namespace else [self.kind, self.name]
        return "/".join(parts)

    @property
    def group_kind(self) -> str:
        return f"{self.group}/{self.kind}"


@dataclass(frozen=True)
class Revision:
    """A resolved commit, with what an auditor wants to see next to it."""

    sha: str
    ref: str = ""
    author: str = ""
    message: str = ""
    committed_at: float = 0.0

    @property
    def short(self) -> str:
        return self.sha[:7]


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


@dataclass(frozen=True)
class Change:
    ref: ObjectRef
    action: ChangeAction
    message: str = ""


@dataclass(frozen=True)
class ChangeSet:
    """What one sync did to each object; logs, metrics, status and the API read it."""

    entries: tuple[Change, ...] = ()

    def counts(self) -> dict[str, int]:
        counted = Counter(entry.action.value for entry in self.entries)
        return {action.value: counted.get(action.value, 0) for action in ChangeAction}

    def failed(self) -> tuple[Change, ...]:
        return tuple(e for e in self.entries if e.action is ChangeAction.FAILED)


class ConditionType(enum.StrEnum):
    COMPARISON_ERROR = "ComparisonError"
    SYNC_ERROR = "SyncError"
    SHARED_RESOURCE_WARNING = "SharedResourceWarning"
    ORPHANED_RESOURCE_WARNING = "OrphanedResourceWarning"
    INVALID_SPEC_ERROR = "InvalidSpecError"


@dataclass(frozen=True)
class Condition:
    type: ConditionType
    message: str


@dataclass(frozen=True)
class AppStatus:
    """What the agent knows about one application; replaced whole after each reconcile."""

    name: str
    sync_status: SyncStatus = SyncStatus.UNKNOWN
    health_status: HealthStatus = HealthStatus.UNKNOWN
    revision: Revision | None = None
    message: str = ""
    conditions: tuple[Condition, ...] = ()
    operation_phase: OperationPhase | None = None
    changes: ChangeSet = field(default_factory=ChangeSet)
    reconciled_at: float | None = None
