"""Resource hooks, with Argo CD's semantics: which objects are hooks, of which phases, how their
objects are named and marked, and what their health means for the sync. Pure: no I/O.

A hook is any object annotated `argocd.argoproj.io/hook` (or `gitops-agent.io/hook`) with
one or more of PreSync, Sync, PostSync, SyncFail, PostDelete. Hooks are never part of the
app's desired state: they are not compared, inventoried or pruned, do not carry the app
label (so no watch event of theirs is drift) and are found again by `gitops-agent.io/hook-of`.
`Skip` alone marks an ordinary resource that is compared but never applied.
"""

from __future__ import annotations

import copy

from agent import HOOK_LABEL, HOOK_TEMPLATE_ANNOTATION
from agent.engine.health import Health
from agent.errors import RenderError
from agent.model import (
    DeletePolicy,
    HealthStatus,
    Hook,
    HookType,
    KubeObject,
    ObjectRef,
    OperationPhase,
)

HOOK_ANNOTATIONS = ("gitops-agent.io/hook", "argocd.argoproj.io/hook")
DELETE_POLICY_ANNOTATIONS = ("gitops-agent.io/hook-delete-policy", "argocd.argoproj.io/hook-delete-policy")
HELM_HOOK_ANNOTATION = "helm.sh/hook"
SYNC_PHASES = (HookType.PRE_SYNC, HookType.SYNC, HookType.POST_SYNC, HookType.SYNC_FAIL)
_TYPES = {hook_type.value: hook_type for hook_type in HookType}
_POLICIES = {policy.value: policy for policy in DeletePolicy}


def _annotations(obj: KubeObject) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _values(obj: KubeObject, keys: tuple[str, ...]) -> list[tuple[str, str]]:
    """Every comma-separated value of the annotations `keys`, with the annotation it came from."""
    annotations = _annotations(obj)
    return [(key, part.strip()) for key in keys for part in str(annotations.get(key, "")).split(",") if part.strip()]


def hook_types(obj: KubeObject) -> frozenset[HookType]:
    """The hook types an object is annotated with, in either spelling; an unknown one is an error."""
    found = set()
    for key, value in _values(obj, HOOK_ANNOTATIONS):
        if value not in _TYPES:
            known = ", ".join(_TYPES)
            raise RenderError(f"{key}: unknown hook type {value!r} (known: {known})", ref=ObjectRef.of(obj))
        found.add(_TYPES[value])
    return frozenset(found)


def delete_policies(obj: KubeObject) -> frozenset[DeletePolicy]:
    """`hook-delete-policy` values; BeforeHookCreation when none is given (Argo CD's default)."""
    found = set()
    for key, value in _values(obj, DELETE_POLICY_ANNOTATIONS):
        if value not in _POLICIES:
            known = ", ".join(_POLICIES)
            raise RenderError(f"{key}: unknown hook delete policy {value!r} (known: {known})", ref=ObjectRef.of(obj))
        found.add(_POLICIES[value])
    return frozenset(found) or frozenset({DeletePolicy.BEFORE_HOOK_CREATION})


def is_skipped(types: frozenset[HookType]) -> bool:
    """`Skip` alone: an ordinary resource a sync never applies (with other types, Skip is ignored)."""
    return types == {HookType.SKIP}


def hooks_of(obj: KubeObject, *, wave: int, origin: str) -> list[Hook]:
    """One Hook per phase the object names (none for `Skip` alone); the object is already placed."""
    types = hook_types(obj) - {HookType.SKIP}
    policies = delete_policies(obj)
    return [Hook(phase, obj, wave, policies, origin) for phase in sorted(types, key=lambda t: t.rank)]


def helm_hook_warning(obj: KubeObject) -> str:
    """Why an object with a Helm hook annotation is not run as a hook ('' when it has none)."""
    helm = _annotations(obj).get(HELM_HOOK_ANNOTATION)
    if helm is None or hook_types(obj):
        return ""
    return (f"{ObjectRef.of(obj)}: {HELM_HOOK_ANNOTATION}: {helm!r} is not supported and the object is synced as "
            f"an ordinary resource; use argocd.argoproj.io/hook instead")


def template_key(hook: Hook) -> str:
    """What identifies a hook's objects across syncs: phase and template identity."""
    ref = hook.ref
    return f"{hook.phase.value}:{ref.group}/{ref.kind}:{ref.namespace}/{ref.name}"


def hook_name(hook: Hook, *, revision: str, started: float) -> str:
    """The name of the hook's object in one sync: its own, or for a `generateName` one (as
    gitops-engine forms it) the prefix, the short revision, the phase and when the operation
    started, so the name is the same when a sync is carried on after a restart."""
    if not hook.generated:
        return hook.ref.name
    return f"{hook.ref.name}{revision[:7]}-{hook.phase.value.lower()}-{int(started)}"


def hook_object(app: str, hook: Hook, name: str) -> KubeObject:
    """The object to create for a hook: the template named, and marked as this app's hook."""
    obj = copy.deepcopy(hook.template)
    meta = obj["metadata"]
    meta.pop("generateName", None)
    meta["name"] = name
    meta["labels"] = {**(meta.get("labels") or {}), HOOK_LABEL: app}
    meta["annotations"] = {**(meta.get("annotations") or {}), HOOK_TEMPLATE_ANNOTATION: template_key(hook)}
    return obj


def is_hook_of(app: str, obj: KubeObject) -> bool:
    """Whether a live object is a hook this app's syncs created (the only ones they delete)."""
    return ((obj.get("metadata") or {}).get("labels") or {}).get(HOOK_LABEL) == app


def made_from(hook: Hook, obj: KubeObject) -> bool:
    """Whether a live hook object was created from this hook's template (in any sync)."""
    return _annotations(obj).get(HOOK_TEMPLATE_ANNOTATION) == template_key(hook)


def hook_result(health: Health) -> tuple[OperationPhase, str]:
    """A hook's phase from its object's health, as gitops-engine maps it: Healthy (a Job complete,
    a Pod succeeded, a kind without a health check) succeeded; Progressing or Suspended is still
    running; Degraded or Unknown failed. A hook object that disappeared before it finished
    failed: nobody can tell how it ended."""
    if health.status is HealthStatus.HEALTHY:
        return OperationPhase.SUCCEEDED, health.message
    if health.status in (HealthStatus.PROGRESSING, HealthStatus.SUSPENDED):
        return OperationPhase.RUNNING, health.message
    if health.status is HealthStatus.MISSING:
        return OperationPhase.FAILED, "deleted before it finished"
    return OperationPhase.FAILED, health.message or health.status.value
