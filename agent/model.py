"""Plain data shared by every layer: identities, revisions, statuses, change sets.

Nothing here does I/O; everything is immutable or owned by exactly one writer
(the controller sets `AppStatus`).
"""

from __future__ import annotations

import enum
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
        counted = dict.fromkeys(_ACTIONS, 0)
        for entry in self.entries:
            counted[entry.action.value] += 1
        return counted

    def failed(self) -> tuple[Change, ...]:
        return tuple(e for e in self.entries if e.action is ChangeAction.FAILED)


class ConditionType(enum.StrEnum):
    COMPARISON_ERROR = "ComparisonError"
    SYNC_ERROR = "SyncError"
    SHARED_RESOURCE_WARNING = "SharedResourceWarning"
    ORPHANED_RESOURCE_WARNING = "OrphanedResourceWarning"
    INVALID_SPEC_ERROR = "InvalidSpecError"
    UNKNOWN_ERROR = "UnknownError"  # Argo CD's name for a failure it did not anticipate


@dataclass(frozen=True)
class Condition:
    type: ConditionType
    message: str


@dataclass(frozen=True)
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
class AutoSyncPause:
    """Automated sync is paused for an app (after a rollback) until resumed or a new commit arrives."""

    reason: str
    tracked_sha: str  # what the tracked revision resolved to when paused; another commit resumes ("": not known yet)
    since: float


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
    resources: tuple[ResourceState, ...] = ()  # every desired object, with its sync and health
    paused: AutoSyncPause | None = None  # automated sync paused (after a rollback)


@dataclass(frozen=True)
class LastSync:
    """The latest sync operation of an app, as far as deciding the next one needs it."""

    revision: str
    phase: OperationPhase
    attempts: int  # operations run for this revision since it was first synced or a manual sync
    finished: float


@dataclass(frozen=True)
class HistoryEntry:
    """One sync operation in an app's history (Argo CD's `status.history`, with the outcome)."""

    id: int  # increasing per app
    revision: str  # commit SHA
    author: str
    message: str  # first line of the commit message
    trigger: SyncTrigger
    started: float
    finished: float
    phase: OperationPhase
    created: int = 0
    configured: int = 0
    pruned: int = 0
    failed: int = 0


@dataclass(frozen=True)
class AppliedVersion:
    """Proof that one object was in sync: the fingerprint of the desired object and the live
    resourceVersion seen right after our apply, or when a comparison found it equal."""

    fingerprint: str
    resource_version: str
    live_digest: str = ""  # the live object's content without status and server bookkeeping


@dataclass(frozen=True, order=True)
class InventoryEntry:
    """An object the agent applied for an app (and has not pruned): identity plus apiVersion."""

    api_version: str
    ref: ObjectRef


# ---------------------------------------------------------------- app policy (read from config)


@dataclass(frozen=True)
class RetryPolicy:
    """How a failed sync is retried (Argo CD's `retry`); limit 0 means not retried."""

    limit: int = 0
    backoff_duration: float = 5.0
    backoff_factor: float = 2.0
    backoff_max_duration: float = 180.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number `attempt` (1-based)."""
        return float(min(self.backoff_duration * self.backoff_factor ** (attempt - 1), self.backoff_max_duration))


APP_SYNC_OPTIONS = frozenset({
    "CreateNamespace=true", "PruneLast=true", "ApplyOutOfSyncOnly=true", "ServerSideApply=true",
    "Replace=true", "Force=true", "Prune=false", "Validate=false",
})


@dataclass(frozen=True)
class SyncPolicy:
    automated: bool = True
    prune: bool = False
    self_heal: bool = False
    allow_empty: bool = False
    options: frozenset[str] = frozenset()
    retry: RetryPolicy = RetryPolicy()
    health_timeout: float = 300.0

    def has(self, option: str) -> bool:
        return option in self.options


@dataclass(frozen=True)
class IgnoreDifference:
    """Fields left out of the comparison for matching objects (Argo CD's `ignoreDifferences`)."""

    kind: str
    group: str = ""
    name: str = ""
    namespace: str = ""
    json_pointers: tuple[str, ...] = ()
    managed_fields_managers: tuple[str, ...] = ()


# ---------------------------------------------------------------- repository credentials (read from config)


@dataclass(frozen=True)
class RepoSpec:
    """Access to every repository whose URL starts with `url` (Argo CD's repo-creds).

    Holds where secrets live (an environment variable or a file), never a secret itself:
    they are read at each use, so a rotated token or key is picked up without a restart.
    """

    url: str
    username: str = ""
    password_env: str = ""
    password_file: str = ""
    ssh_key_file: str = ""
    known_hosts_file: str = ""
    insecure_ignore_host_key: bool = False
    ca_file: str = ""
    insecure_skip_tls_verify: bool = False
    webhook_secret_env: str = ""
    webhook_secret_file: str = ""
