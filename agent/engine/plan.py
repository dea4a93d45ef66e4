"""Pair desired with live objects and decide, per object, what a sync must do. Pure: no I/O.

A prune candidate is a live object carrying this app's label that Git no longer
declares. It is deleted only when its tracking annotation names this app too, it is
not annotated `Prune=false`, pruning is on, and the render is not empty (unless the
app allows that).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from agent import APP_LABEL, TRACKING_ANNOTATION
from agent.engine.desired import tracking_id
from agent.engine.diff import differs
from agent.engine.options import compare_options, sync_options, sync_wave
from agent.errors import RenderError
from agent.model import (
    Action,
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
) -> Plan:
    """Classify every desired object and every labelled live object that is no longer desired.

    `predicted` holds the server's dry-run of applying each desired object that exists;
    `prune` overrides the policy's prune setting (a manual sync may ask for it); `proven`
    are objects known unchanged without a dry-run (see `fingerprint.proven_unchanged`).
    """
    errors = dry_run_errors or {}
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
        objects.append(PlannedObject(ref, obj, current, action, sync_wave(obj), sync_options(obj),
                                     predicted.get(ref), note))
    prune_enabled = policy.prune if prune is None else prune
    prune_last = policy.has("PruneLast=true")
    candidates = tuple(
        _candidate(app, ref, obj, prune_enabled, prune_last=prune_last)
        for ref, obj in sorted(live.items())
        if ref not in desired_refs
    )
    refusal = ""
    if not desired and prune_enabled and not policy.allow_empty and any(not c.blocked for c in candidates):
        refusal = (f"refusing to prune all {len(candidates)} resources: the render is empty "
                   "(set allow_empty = true in sync_policy to allow it)")
    return Plan(tuple(objects), candidates, refusal)


def _action(ref: ObjectRef, live: KubeObject | None, predicted: KubeObject | None,
            ignore: Sequence[IgnoreDifference], dry_run_error: str) -> tuple[Action, str]:
    if live is None:
        return Action.CREATE, ""
    if dry_run_error:
        return Action.UPDATE, dry_run_error
    if predicted is None:
        return Action.UPDATE, "no dry-run result"
    return (Action.UPDATE if differs(predicted, live, ignore) else Action.UNCHANGED), ""


def _candidate(app: str, ref: ObjectRef, live: KubeObject, prune_enabled: bool, *,
               prune_last: bool) -> PruneCandidate:
    options = sync_options(live)
    try:
        wave = sync_wave(live)
    except RenderError:
        wave = 0
    ignored = "IgnoreExtraneous" in compare_options(live)
    blocked = ""
    if not owned_by(app, live):
        # Carries our label but not our tracking id (copied by some controller, or another app's):
        # never deleted, and not a reason to call the app OutOfSync.
        annotation = ((live.get("metadata") or {}).get("annotations") or {}).get(TRACKING_ANNOTATION)
        blocked, ignored = f"not owned by {app}: tracking id is {annotation!r}", True
    elif "Prune=false" in options:
        blocked = "annotated Prune=false"
    elif not prune_enabled:
        blocked = "pruning is off"
    return PruneCandidate(ref, live, wave, prune_last or "PruneLast=true" in options, blocked, ignored)
