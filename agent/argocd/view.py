"""A parent's definitions in its own status, and its children's specs from its record. Pure.

    with_definitions(status, adopted)           the parent's status, its definitions among its resources
    without_definitions(status, adopted, ...)   the status of its own objects only (what a reconcile sees)
    child_spec(child, parent=)                  a child's spec from the Application it was adopted from
    placeholder(name, ...)                      the spec of a child shown `Unknown` that never ran

A parent's status lists each definition it renders as a resource (group `argoproj.io`, kind
Application, AppProject or ApplicationSet): `Synced` when adopted, `OutOfSync` with the reason
when not. Its conditions add the definitions' problems, and while any remains the parent is
not `Synced`. The reconcile itself never sees them: it compares only the parent's own objects.
"""

from __future__ import annotations

from dataclasses import replace

from agent.argocd.application import parse_application
from agent.argocd.definitions import ADOPTED_KINDS
from agent.argocd.fields import InvalidDefinition
from agent.config.apps import AppSpec
from agent.model import (
    DEFAULT_PROJECT,
    Adopted,
    AdoptedChild,
    AppStatus,
    HealthStatus,
    ObjectRef,
    ResourceState,
    SyncStatus,
)

ADOPTED_GROUP = "argoproj.io"


def definition_state(kind: str, name: str, problem: str, *, healthy: str = "") -> ResourceState:
    """One definition as a resource of its parent: adopted (`problem` empty), or not and why."""
    ref = ObjectRef(ADOPTED_GROUP, kind, "", name)
    if problem:
        return ResourceState(ref, SyncStatus.OUT_OF_SYNC, HealthStatus.UNKNOWN, problem)
    return ResourceState(ref, SyncStatus.SYNCED, HealthStatus.HEALTHY, healthy)


def is_definition_ref(ref: ObjectRef) -> bool:
    return ref.group == ADOPTED_GROUP and ref.kind in ADOPTED_KINDS and not ref.namespace


def with_definitions(status: AppStatus, adopted: Adopted | None) -> AppStatus:
    if adopted is None:
        return status
    sync = status.sync_status
    if not adopted.in_sync and sync is SyncStatus.SYNCED:
        sync = SyncStatus.OUT_OF_SYNC
    return replace(status, sync_status=sync, resources=(*status.resources, *adopted.resources),
                   conditions=(*status.conditions, *(c for c in adopted.conditions if c not in status.conditions)))


def without_definitions(status: AppStatus, adopted: Adopted | None, *, compared_in_sync: bool) -> AppStatus:
    """`compared_in_sync`: the last comparison of the parent's own objects found them in sync (its
    mark of being unchanged is set), so an `OutOfSync` came from the definitions alone."""
    if adopted is None:
        return status
    sync = status.sync_status
    if not adopted.in_sync and compared_in_sync and sync is SyncStatus.OUT_OF_SYNC:
        sync = SyncStatus.SYNCED
    return replace(status, sync_status=sync,
                   resources=tuple(r for r in status.resources if not is_definition_ref(r.ref)),
                   conditions=tuple(c for c in status.conditions if c not in adopted.conditions))


def placeholder(name: str, *, parent: str, origin: str, project: str = "") -> AppSpec:
    """A child that is shown but never ran: no repository (so nothing can be rendered from it)."""
    return AppSpec(name=name, repo="", parent=parent, origin=origin, project=project or DEFAULT_PROJECT)


def child_spec(child: AdoptedChild, *, parent: str) -> tuple[AppSpec, str]:
    """(the spec, the refusal) of a child as its parent's record keeps it. A definition this version
    cannot read any more is a refusal, never a removal."""
    if not child.definition:
        return placeholder(child.name, parent=parent, origin=child.origin, project=child.project), child.refusal
    try:
        spec = parse_application(child.definition, file=child.file, parent=parent, origin=child.origin)
    except InvalidDefinition as exc:
        return placeholder(child.name, parent=parent, origin=child.origin, project=child.project), str(exc)
    return spec, child.refusal
