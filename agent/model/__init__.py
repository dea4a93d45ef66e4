"""Plain data shared by every layer. Nothing here does I/O; everything is immutable.

    core    identities, revisions, statuses, change sets, rendered manifests
    specs   what users declare: sync and retry policy, ignore rules, repository access,
            directory and kustomize options, render settings
    plan    what a sync must do to each object (made by agent.engine.plan)
    hooks   resource hooks (PreSync, Sync, PostSync, SyncFail, PostDelete) and their runs
    state   AppState: everything learned about one app, and the sync operation in progress
    projects  ProjectSpec (Argo CD's AppProject): destinations, kinds, roles, sync windows
    adopted   what a parent app adopted from its render (Argo CD definitions) and its children
    clusters  ClusterSpec: how to reach one cluster; the home cluster's names
"""

from agent.model.adopted import Adopted, AdoptedChild
from agent.model.clusters import IN_CLUSTER, IN_CLUSTER_SERVER, ClusterSpec
from agent.model.core import (
    Change,
    ChangeAction,
    ChangeReason,
    ChangeSet,
    Condition,
    ConditionType,
    HealthStatus,
    Kind,
    KubeObject,
    Manifest,
    ObjectRef,
    OperationPhase,
    ResourceState,
    Revision,
    SyncStatus,
    SyncTrigger,
)
from agent.model.hooks import DeletePolicy, Hook, HookRun, HookType
from agent.model.plan import KIND_ORDER, PRE_SYNC_KINDS, Action, Claims, Plan, PlannedObject, PruneCandidate
from agent.model.projects import (
    DEFAULT_PROJECT,
    Destination,
    ProjectRole,
    ProjectSpec,
    ResourceKind,
    SyncWindow,
)
from agent.model.specs import (
    APP_SYNC_OPTIONS,
    REFUSED_SYNC_OPTIONS,
    DirectorySpec,
    IgnoreDifference,
    ImageOverride,
    KustomizeSpec,
    RenderSettings,
    RepoSpec,
    RetryPolicy,
    SyncPolicy,
    parse_image,
    split_image,
)
from agent.model.state import (
    AppliedVersion,
    AppState,
    AppStatus,
    AutoSyncPause,
    HistoryEntry,
    InventoryEntry,
    LastSync,
    OperationRequest,
    SyncOperation,
    UnchangedSince,
)

__all__ = [
    "APP_SYNC_OPTIONS",
    "DEFAULT_PROJECT",
    "IN_CLUSTER",
    "IN_CLUSTER_SERVER",
    "KIND_ORDER",
    "PRE_SYNC_KINDS",
    "REFUSED_SYNC_OPTIONS",
    "Action",
    "Adopted",
    "AdoptedChild",
    "AppState",
    "AppStatus",
    "AppliedVersion",
    "AutoSyncPause",
    "Change",
    "ChangeAction",
    "ChangeReason",
    "ChangeSet",
    "Claims",
    "ClusterSpec",
    "Condition",
    "ConditionType",
    "DeletePolicy",
    "Destination",
    "DirectorySpec",
    "HealthStatus",
    "HistoryEntry",
    "Hook",
    "HookRun",
    "HookType",
    "IgnoreDifference",
    "ImageOverride",
    "InventoryEntry",
    "Kind",
    "KubeObject",
    "KustomizeSpec",
    "LastSync",
    "Manifest",
    "ObjectRef",
    "OperationPhase",
    "OperationRequest",
    "Plan",
    "PlannedObject",
    "ProjectRole",
    "ProjectSpec",
    "PruneCandidate",
    "RenderSettings",
    "RepoSpec",
    "ResourceKind",
    "ResourceState",
    "RetryPolicy",
    "Revision",
    "SyncOperation",
    "SyncPolicy",
    "SyncStatus",
    "SyncTrigger",
    "SyncWindow",
    "UnchangedSince",
    "parse_image",
    "split_image",
]
