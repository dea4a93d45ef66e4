"""A plan: what a sync must do to each desired object and which live objects it may prune. Pure data,
made by `agent.engine.plan.make_plan` and carried out wave by wave by `agent.engine.sync`."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from agent.model.core import KubeObject, ObjectRef

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
class Plan:
    objects: tuple[PlannedObject, ...]
    prune: tuple[PruneCandidate, ...]
    refusal: str = ""  # a reason to apply and delete nothing at all

    @property
    def to_apply(self) -> tuple[PlannedObject, ...]:
        return tuple(o for o in self.objects if o.action is not Action.UNCHANGED)

    @property
    def requires_pruning(self) -> tuple[PruneCandidate, ...]:
        return tuple(c for c in self.prune if not c.extraneous_ignored)

    @property
    def out_of_sync(self) -> bool:
        return bool(self.to_apply or self.requires_pruning)

    def waves(self) -> list[tuple[int, list[PlannedObject]]]:
        """Objects grouped by wave, each group in apply order; pre-sync kinds come first as their own group."""
        ordered = sorted(self.objects, key=lambda o: (not o.pre_sync, *o.sort_key))
        groups: list[tuple[int, list[PlannedObject]]] = []
        for obj in ordered:
            key = -(2**31) if obj.pre_sync else obj.wave
            if not groups or groups[-1][0] != key:
                groups.append((key, []))
            groups[-1][1].append(obj)
        return groups

    def prune_order(self) -> list[PruneCandidate]:
        """Deletable candidates: reverse wave order, PruneLast ones after all others."""
        deletable = [c for c in self.prune if not c.blocked]
        return sorted(deletable, key=lambda c: (c.prune_last, -c.wave, c.ref.kind, c.ref.namespace, c.ref.name))
