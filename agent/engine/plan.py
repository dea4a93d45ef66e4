"""Pair desired with live objects and decide, per object, what a sync must do. Pure: no I/O.

A prune candidate is a live object carrying this app's label that Git no longer
declares. It is deleted only when its tracking annotation names this app too, it is
not annotated `Prune=false`, pruning is on, and the render is not empty (unless the
app allows that).

Ownership (agent.engine.ownership): a desired object whose live copy carries another
app's tracking id is never taken over; one the owner no longer declares passes to the
app that does, instead of being pruned.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent import APP_LABEL, TRACKING_ANNOTATION
from agent.engine.desired import tracking_id
from agent.engine.diff import differs
from agent.engine.hooks import hook_types, is_skipped
from agent.engine.ignore import respect_ignored
from agent.engine.options import compare_options, sync_options, sync_wave
from agent.engine.ownership import desired_owner_rule, handed_over, shared_warnings
from agent.errors import RenderError
from agent.model import (
    Action,
    Claims,
    Condition,
    Hook,
    IgnoreDifference,
    KubeObject,
    ObjectRef,
    Plan,
    PlannedObject,
    PruneCandidate,
    SyncPolicy,
)

__all__ = ["Action", "Plan", "PlannedObject", "PruneCandidate", "make_plan", "owned_by"]


def owned_by(app: str, live: KubeObject) -> bool:
    """Both the label and the tracking annotation must name this app for the object to be ours."""
    meta = live.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return labels.get(APP_LABEL) == app and annotations.get(TRACKING_ANNOTATION) == tracking_id(app, ObjectRef.of(live))


def make_plan(
    app: str,
    desired: Sequence[KubeObject],
    live: Mapping[ObjectRef, KubeObject],
    predicted: Mapping[ObjectRef, KubeObject],
    *,
    policy: SyncPolicy,
    ignore: Sequence[IgnoreDifference] = (),
    dry_run_errors: Mapping[ObjectRef, str] | None = None,
    prune: bool | None = None,
    proven: frozenset[ObjectRef] = frozenset(),
    hooks: Sequence[Hook] = (),
    warnings: Sequence[Condition] = (),
    claims: Claims | None = None,
    adopt_existing: bool = True,
) -> Plan:
    """Classify every desired object and every labelled live object that is no longer desired.

    `predicted` holds the server's dry-run of applying each desired object that exists;
    `prune` overrides the policy's prune setting (a manual sync may ask for it); `proven`
    are objects known unchanged without a dry-run (see `fingerprint.proven_unchanged`).
    `claims` is what the other apps declare; `adopt_existing` whether an existing object no
    app manages may be taken over (Argo CD does; a project may refuse it).
    """
    errors = dry_run_errors or {}
    claims = claims or Claims()
    respect = policy.has("RespectIgnoreDifferences=true")
    objects = []
    desired_refs = set()
    for obj in desired:
        ref = ObjectRef.of(obj)
        desired_refs.add(ref)
        current = live.get(ref)
        if ref in proven and current is not None:
            action, note = Action.UNCHANGED, ""
        else:
            action, note = _action(ref, current, predicted.get(ref), ignore, errors.get(ref, ""))
        blocked, shared = desired_owner_rule(app, ref, current, claims, adopt_existing=adopt_existing)
        if not blocked and is_skipped(hook_types(obj)):
            blocked = "annotated hook: Skip"
        applied = respect_ignored(obj, current, ignore) if respect and current is not None else obj
        objects.append(PlannedObject(ref, applied, current, action, sync_wave(obj), sync_options(obj),
                                     predicted.get(ref), note, blocked, shared))
    prune_enabled = policy.prune if prune is None else prune
    candidates = tuple(
        _candidate(app, ref, obj, prune_enabled, policy, claims)
        for ref, obj in sorted(live.items())
        if ref not in desired_refs
    )
    refusal = ""
    if not desired and prune_enabled and not policy.allow_empty and any(not c.blocked for c in candidates):
        refusal = (f"refusing to prune all {len(candidates)} resources: the render is empty "
                   "(set allow_empty = true in sync_policy to allow it)")
    owned_elsewhere = [o for o in objects if o.shared]
    if owned_elsewhere and policy.has("FailOnSharedResource=true") and not refusal:
        refusal = f"Shared resource found: {owned_elsewhere[0].blocked}" + (
            f" (and {len(owned_elsewhere) - 1} more)" if len(owned_elsewhere) > 1 else "")
    found = (*warnings, *shared_warnings(app, objects, claims))
    return Plan(tuple(objects), candidates, refusal, tuple(hooks), found)


def _action(ref: ObjectRef, live: KubeObject | None, predicted: KubeObject | None,
            ignore: Sequence[IgnoreDifference], dry_run_error: str) -> tuple[Action, str]:
    if live is None:
        return Action.CREATE, ""
    if dry_run_error:
        return Action.UPDATE, dry_run_error
    if predicted is None:
        return Action.UPDATE, "no dry-run result"
    return (Action.UPDATE if differs(predicted, live, ignore) else Action.UNCHANGED), ""


def _candidate(app: str, ref: ObjectRef, live: KubeObject, prune_enabled: bool, policy: SyncPolicy,
               claims: Claims) -> PruneCandidate:
    options = sync_options(live)
    try:
        wave = sync_wave(live)
    except RenderError:
        wave = 0
    ignored = "IgnoreExtraneous" in compare_options(live)
    blocked = ""
    successor = handed_over(ref, claims)
    if not owned_by(app, live):
        # Carries our label but not our tracking id (copied by some controller, or another app's):
        # never deleted, and not a reason to call the app OutOfSync.
        annotation = ((live.get("metadata") or {}).get("annotations") or {}).get(TRACKING_ANNOTATION)
        blocked, ignored = f"not owned by {app}: tracking id is {annotation!r}", True
    elif successor:
        # Another app declares it: it passes to that app (which takes it over) instead of being deleted.
        blocked, ignored = f"declared by application {successor!r}, which takes it over", True
    elif "Prune=false" in options or "Prune=confirm" in options:
        blocked = f"annotated {'Prune=false' if 'Prune=false' in options else 'Prune=confirm (not supported)'}"
    elif policy.has("Prune=false") and "Prune=true" not in options:
        blocked = "the app's sync options say Prune=false"
    elif not prune_enabled:
        blocked = "pruning is off"
    prune_last = policy.has("PruneLast=true") or "PruneLast=true" in options
    return PruneCandidate(ref, live, wave, prune_last, blocked, ignored)
