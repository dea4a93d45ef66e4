"""What the agent learns about an app and keeps between reconciles: one frozen `AppState` per app.

`Reconciler.reconcile(spec, state, request)` returns the next state; the controller is the
only one to store it (bumping `version`), the snapshot encodes it (agent.state.codec), and
API, metrics and logs read it. Fields marked transient live in memory only: they are cheap
to learn again after a restart and would make the snapshot large or meaningless.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from agent.model.adopted import Adopted
from agent.model.clusters import IN_CLUSTER
from agent.model.core import (
    Change,
    ChangeSet,
    Condition,
    HealthStatus,
    Kind,
    KubeObject,
    ObjectRef,
    OperationPhase,
    ResourceState,
    Revision,
    SyncStatus,
    SyncTrigger,
)
from agent.model.hooks import HookRun
from agent.model.plan import Plan


@dataclass(frozen=True)
class AutoSyncPause:
    """Automated sync is paused for an app (after a rollback) until resumed or a new commit arrives."""

    reason: str
    tracked_sha: str  # what the tracked revision resolved to when paused; another commit resumes ("": not known yet)
    since: float


@dataclass(frozen=True)
class AppStatus:
    """What an application looks like now, as the API, metrics and logs show it; part of its AppState."""

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
    initiated_by: str = ""  # who asked for it through the API (the token's user); "" for automated syncs
    hooks: tuple[HookRun, ...] = ()  # every hook the sync ran, with its result


@dataclass(frozen=True, slots=True)
class AppliedVersion:
    """Proof that one object was in sync: the fingerprint of the desired object and the live
    resourceVersion seen right after our apply, or when a comparison found it equal."""

    fingerprint: str
    resource_version: str
    live_digest: str = ""  # the live object's content without status and server bookkeeping


@dataclass(frozen=True, order=True, slots=True)
class InventoryEntry:
    """An object the agent applied for an app (and has not pruned): identity plus apiVersion."""

    api_version: str
    ref: ObjectRef


@dataclass(frozen=True)
class OperationRequest:
    """A sync asked for by a person (API or CLI) rather than by the automated policy."""

    revision: str | None = None  # sync to this revision instead of the app's
    prune: bool | None = None  # override the policy's prune for this sync
    dry_run: bool = False  # plan and diff only
    trigger: SyncTrigger = SyncTrigger.MANUAL  # recorded in the sync history
    initiated_by: str = ""  # the API caller (token's user), recorded in the sync history
    # Selective sync (`argocd app sync --resource`): apply only these, no prune, no hooks. A
    # namespace of "" matches the object in any namespace.
    resources: tuple[ObjectRef, ...] = ()


@dataclass(frozen=True)
class SyncOperation:
    """A sync in progress, as gitops-engine's SyncContext keeps it: each reconcile of the app
    advances it by (at most) one step (a wave of a phase) and returns, so waiting for health
    or a hook holds neither the app's lock nor a reconcile slot.

    `step` is the index of the next of the plan's sync steps (agent.engine.steps) to run.
    While `waiting_since` is set, the step before it was run and its hooks or health are
    awaited (since then). `failure` is set once the sync failed and its SyncFail hooks run.
    """

    revision: Revision
    trigger: SyncTrigger
    prune: bool
    manual: bool  # asked for by a person: retries of the revision are counted afresh
    started: float
    step: int = 0
    waiting_since: float | None = None
    changes: tuple[Change, ...] = ()
    message: str = ""  # what it waits for, for the status
    initiated_by: str = ""  # the person who asked for it (OperationRequest.initiated_by)
    hooks: tuple[HookRun, ...] = ()  # the hooks run so far: a finished one is never run again
    failure: str = ""  # why the sync failed, while its SyncFail hooks run
    resources: tuple[ObjectRef, ...] = ()  # a selective sync's objects (see OperationRequest)
    # Transient: the plan being carried out, the fingerprints of its desired objects, and what
    # the server answered to each apply so far (proofs of sync are made from them at the end).
    # After a restart the operation plans afresh at its revision and starts again from the
    # first step (applying is idempotent; hooks already run are known from `hooks`).
    plan: Plan | None = field(default=None, compare=False, repr=False)
    prints: Mapping[ObjectRef, str] = field(default_factory=dict, compare=False, repr=False)
    written: Mapping[ObjectRef, KubeObject] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class UnchangedSince:
    """Transient: the app as it was last found in sync without syncing. While the spec, the commit
    the revision names and the content of the live objects (the watch cache's epoch) stay the
    same, so does the comparison: a poll costs no API call and no render."""

    spec: object  # the AppSpec compared (frozen, compared by value)
    sha: str
    epoch: int  # the watch cache's count of content changes to the app's objects
    touches: int  # its count of any change (status too): health is assessed again when it moves
    rules: object  # the health rules health was assessed with (a reload may change them)
    claims: int = 0  # what other apps declare of this app's objects changed when this count moves
    project: object = None  # the app's project as it was judged by (a reload or Git may change its rules)


@dataclass(frozen=True)
class AppState:
    """Everything that outlives one reconcile of one app. Replaced whole, never mutated."""

    name: str
    status: AppStatus
    version: int = 0  # bumped by every store: an outcome computed from an older version is stale
    last_sync: LastSync | None = None  # what the automated policy decides retries from
    tracked_sha: str = ""  # the commit the tracked revision resolved to at the last automatic reconcile
    kinds: frozenset[Kind] = frozenset()  # resource types the app used: watched, and listed for prune
    applied: Mapping[ObjectRef, AppliedVersion] = field(default_factory=dict)  # proofs of sync
    inventory: tuple[InventoryEntry, ...] = ()
    inventory_known: bool = False  # transient: False until restored from a good snapshot or rebuilt
    history: tuple[HistoryEntry, ...] = ()  # newest first
    pause: AutoSyncPause | None = None  # automated sync paused (after a rollback)
    operation: SyncOperation | None = None  # a sync in progress
    unchanged: UnchangedSince | None = None  # transient
    diffs: Mapping[ObjectRef, str] = field(default_factory=dict)  # transient: what a sync would change
    cluster: str = IN_CLUSTER  # the cluster (as the spec names it) everything above was learned from
    # Notification marks: trigger → the oncePer value it last fired for ("" without one); what
    # makes each notification go out once (agent.notifications.triggers). None: never evaluated
    # (restored from a snapshot older than notifications, or a lost one): the first evaluation
    # records what holds and sends nothing.
    notified: Mapping[str, str] | None = field(default_factory=dict)
    # What the app's render declared as Argo CD definitions and adopted (an app of apps); None for
    # an app whose render never held any.
    adopted: Adopted | None = None

    @classmethod
    def new(cls, name: str, *, cluster: str = IN_CLUSTER) -> AppState:
        return cls(name=name, status=AppStatus(name=name), cluster=cluster)

    def on_cluster(self, cluster: str) -> AppState:
        """The state of the app deploying to `cluster`. Proofs, inventory, kinds, the last sync and a
        sync in progress learned on another cluster say nothing about this one (its resourceVersions
        are another etcd's); status and history stay, as the app's own record."""
        if cluster == self.cluster:
            return self
        return replace(self, cluster=cluster, last_sync=None, kinds=frozenset(), applied={}, inventory=(),
                       inventory_known=False, operation=None, unchanged=None, diffs={})

    @property
    def owned_kinds(self) -> frozenset[Kind]:
        """The kinds used and the kinds of everything in the inventory: where the app's objects are."""
        return self.kinds | {(entry.api_version, entry.ref.kind) for entry in self.inventory}

    def renamed(self, name: str) -> AppState:
        return replace(self, name=name, status=replace(self.status, name=name))
