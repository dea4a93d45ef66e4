"""What one reconcile returns: its result (for logs, metrics and the answer to a manual sync) and the
app's next state; and the outcome of a reconcile that could not compare."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from agent.engine import status as statuses
from agent.engine.autosync import SyncDecision
from agent.engine.sync import SyncResult
from agent.errors import (
    AgentError,
    InvalidSpec,
    KubeUnreachable,
    NotLeader,
    NotPermitted,
    UnexpectedError,
    UnknownCluster,
)
from agent.model import (
    AppState,
    AppStatus,
    ConditionType,
    HealthStatus,
    Manifest,
    ObjectRef,
    Plan,
    Revision,
    SyncStatus,
)


@dataclass(frozen=True)
class ReconcileResult:
    """What one reconcile did: for logs, metrics, and the answer to a manual sync."""

    app: str
    started: float
    duration: float
    status: AppStatus
    revision: Revision | None = None
    plan: Plan | None = None
    decision: SyncDecision | None = None
    sync: SyncResult | None = None  # the sync operation that ended in this reconcile
    error: AgentError | None = None
    running: bool = False  # a sync operation is still in progress
    reused: bool = False  # nothing moved: the previous comparison holds, health read again from the cache
    diffs: Mapping[ObjectRef, str] = field(default_factory=dict)  # what a sync would change (not after one)
    blocked: str = ""  # a manual sync a sync window refused (which window, and until when); nothing ran
    # The Argo CD definitions a successful render held (agent.controller.adoption); None when this
    # reconcile did not render (an error, a step of a sync, or nothing moved).
    definitions: tuple[Manifest, ...] | None = None

    @property
    def sync_status(self) -> SyncStatus:
        return self.status.sync_status

    @property
    def health_status(self) -> HealthStatus:
        return self.status.health_status

    @property
    def requires_pruning(self) -> int:
        """Objects Git no longer declares that were left in place and count against the sync."""
        if self.sync is not None:
            return self.sync.changes.requires_pruning
        return len(self.plan.requires_pruning) if self.plan else 0


@dataclass(frozen=True)
class Outcome:
    result: ReconcileResult
    state: AppState  # the app's next state


def failed_outcome(name: str, state: AppState, error: AgentError, *, started: float, duration: float = 0.0,
                   revision: Revision | None = None) -> Outcome:
    """The outcome of a reconcile that could not compare: nothing applied, the error shown. An app naming
    no known cluster, or refused by its project, has an invalid spec; one whose cluster does not answer
    has no known health either; an exception nothing expected is an UnknownError."""
    kind = (ConditionType.UNKNOWN_ERROR if isinstance(error, UnexpectedError)
            else ConditionType.INVALID_SPEC_ERROR if isinstance(error, (UnknownCluster, NotPermitted, InvalidSpec))
            else ConditionType.COMPARISON_ERROR)
    status = statuses.failed(state.status, error=str(error), revision=revision, at=started, kind=kind,
                             unseen=isinstance(error, KubeUnreachable) and not isinstance(error, NotLeader))
    result = ReconcileResult(name, started, duration, status, revision=revision, error=error,
                             running=state.operation is not None)
    return Outcome(result, replace(state, status=status, unchanged=None))
