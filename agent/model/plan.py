"""A plan: what a sync must do to each desired object and which live objects it may prune. Pure data,
made by `agent.engine.plan.make_plan` and carried out wave by wave by `agent.engine.sync`."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.model.core import Condition, KubeObject, ObjectRef
from agent.model.hooks import Hook

# Apply order of well-known kinds (Argo CD's), everything else after them.
KIND_ORDER = (
    "Namespace", "ResourceQuota", "LimitRange", "ServiceAccount", "Secret", "ConfigMap", "StorageClass",
    "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
    "ClusterRoleBinding", "Role", "RoleBinding", "Service", "DaemonSet", "Pod", "ReplicaSet", "Deployment",
    "StatefulSet", "Job", "CronJob", "Ingress", "APIService",
)
_KIND_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
PRE_SYNC_KINDS = frozenset({"Namespace", "CustomResourceDefinition"})


class Action(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class PlannedObject:
    ref: ObjectRef
    desired: KubeObject
    live: KubeObject | None
    action: Action
    wave: int
    options: frozenset[str]
    predicted: KubeObject | None = None  # the server's dry-run of applying `desired`
    note: str = ""  # why the comparison could not use a dry-run, for example
    blocked: str = ""  # why a sync must not apply it (another app owns it, `hook: Skip`, ...); empty: it may
    shared: bool = False  # blocked because another app owns it (FailOnSharedResource fails the sync for it)

    @property
    def sort_key(self) -> tuple[int, int, str, str, str]:
        return (self.wave, _KIND_RANK.get(self.ref.kind, len(KIND_ORDER)), self.ref.kind, self.ref.namespace,
                self.ref.name)

    @property
    def pre_sync(self) -> bool:
        """Namespaces and CRDs go first, so later objects (and custom resources) can land."""
        return self.ref.kind in PRE_SYNC_KINDS


@dataclass(frozen=True)
class PruneCandidate:
    ref: ObjectRef
    live: KubeObject
    wave: int
    prune_last: bool
    blocked: str = ""  # why it must not be deleted; empty when it may be
    extraneous_ignored: bool = False  # IgnoreExtraneous: does not make the app OutOfSync


@dataclass(frozen=True)
class Claims:
    """What the other apps of this agent declare, for the ownership rules of a plan.

    `declared` maps an object to the other apps whose last render declared it; `known` are
    the apps whose declarations are known at all (an app not known might still declare
    anything, so nothing is handed over to or taken from it).
    """

    declared: Mapping[ObjectRef, frozenset[str]] = field(default_factory=dict)
    known: frozenset[str] = frozenset()

    def others(self, ref: ObjectRef) -> frozenset[str]:
        return self.declared.get(ref, frozenset())


@dataclass(frozen=True)
class Plan:
    objects: tuple[PlannedObject, ...]
    prune: tuple[PruneCandidate, ...]
    refusal: str = ""  # a reason to apply and delete nothing at all
    hooks: tuple[Hook, ...] = ()  # never compared, applied as resources, inventoried or pruned
    warnings: tuple[Condition, ...] = ()  # shared objects, unsupported annotations: shown, not fatal

    @property
    def to_apply(self) -> tuple[PlannedObject, ...]:
        return tuple(o for o in self.objects if o.action is not Action.UNCHANGED and not o.blocked)

    @property
    def requires_pruning(self) -> tuple[PruneCandidate, ...]:
        return tuple(c for c in self.prune if not c.extraneous_ignored)

    @property
    def out_of_sync(self) -> bool:
        """Whether a sync has something to do (or must be tried and fail: a refusal). Objects a sync
        must not apply do not count, so they never make automated sync loop."""
        return bool(self.to_apply or self.requires_pruning or self.refusal)

    @property
    def blocked(self) -> frozenset[ObjectRef]:
        return frozenset(o.ref for o in self.objects if o.blocked)

    def prune_order(self) -> list[PruneCandidate]:
        """Deletable candidates: reverse wave order, PruneLast ones after all others."""
        deletable = [c for c in self.prune if not c.blocked]
        return sorted(deletable, key=lambda c: (c.prune_last, -c.wave, c.ref.kind, c.ref.namespace, c.ref.name))
