"""The steps of a sync, in order, and when a step waits for health. Pure: no I/O.

    PreSync hooks, wave by wave
    Sync: Namespaces and CRDs first, then each wave's objects and Sync hooks together
    prune (objects Git no longer declares)
    PostSync hooks, wave by wave
    SyncFail hooks, all at once, only when the sync failed

A step with hooks waits until they have completed (a Job complete, a Pod succeeded, other
kinds healthy). A step's objects are waited for as gitops-engine's SyncContext decides:
only when the sync is multi-step (its objects, hooks and prunes span more than one phase
or wave). A sync of one wave without hooks succeeds once everything is applied; health
goes on being reported on its own. Namespaces and CRDs are always waited for: later
objects (custom resources) need them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from agent.model import Hook, HookType, ObjectRef, Plan, PlannedObject


@dataclass(frozen=True)
class SyncStep:
    phase: HookType
    wave: int
    objects: tuple[PlannedObject, ...] = ()
    hooks: tuple[Hook, ...] = ()
    pre_sync: bool = False  # Namespaces and CRDs, before the Sync phase's waves
    prune: bool = False  # the prune step

    @property
    def label(self) -> str:
        return "prune" if self.prune else f"{self.phase.value} wave {self.wave}"


def selected(ref: ObjectRef, selection: Sequence[ObjectRef]) -> bool:
    """Whether a selective sync names the object (an empty namespace matches any; kind and group too
    may be globs, as `argocd app sync --resource` takes them)."""
    return any(want.name == ref.name and fnmatch.fnmatchcase(ref.kind, want.kind)
               and fnmatch.fnmatchcase(ref.group, want.group) and want.namespace in ("", ref.namespace)
               for want in selection)


def sync_steps(plan: Plan, *, selection: Sequence[ObjectRef] = ()) -> list[SyncStep]:
    """Every step of the plan's sync, SyncFail hooks excluded (see `sync_fail_hooks`). A selective
    sync runs only the selected objects: no hooks and no prune, as Argo CD's."""
    objects = [o for o in plan.objects if selected(o.ref, selection)] if selection else list(plan.objects)
    hooks = () if selection else plan.hooks
    steps = _hook_steps(HookType.PRE_SYNC, hooks)
    early = sorted((o for o in objects if o.pre_sync), key=lambda o: o.sort_key)
    if early:
        steps.append(SyncStep(HookType.SYNC, early[0].wave, tuple(early), pre_sync=True))
    waves: dict[int, tuple[list[PlannedObject], list[Hook]]] = {}
    for obj in objects:
        if not obj.pre_sync:
            waves.setdefault(obj.wave, ([], []))[0].append(obj)
    for hook in hooks:
        if hook.phase is HookType.SYNC:
            waves.setdefault(hook.wave, ([], []))[1].append(hook)
    for wave in sorted(waves):
        members, wave_hooks = waves[wave]
        steps.append(SyncStep(HookType.SYNC, wave, tuple(sorted(members, key=lambda o: o.sort_key)),
                              tuple(sorted(wave_hooks, key=_hook_key))))
    if not selection:
        steps.append(SyncStep(HookType.SYNC, 0, prune=True))
    return steps + _hook_steps(HookType.POST_SYNC, hooks)


def sync_fail_hooks(plan: Plan) -> list[Hook]:
    return sorted((h for h in plan.hooks if h.phase is HookType.SYNC_FAIL), key=lambda h: (h.wave, *_hook_key(h)))


def multi_step(plan: Plan, *, prune: bool, selection: Sequence[ObjectRef] = ()) -> bool:
    """gitops-engine's `syncTasks.multiStep`: do the sync's tasks (objects, hooks of every phase, and
    prunes) span more than one (phase, wave)? Prunes marked PruneLast come after the last wave."""
    objects = [o for o in plan.objects if selected(o.ref, selection)] if selection else plan.objects
    keys = {(HookType.SYNC.rank, obj.wave) for obj in objects}
    if not selection:
        keys |= {(hook.phase.rank, hook.wave) for hook in plan.hooks if hook.phase is not HookType.POST_DELETE}
        if prune:
            last = max((wave for rank, wave in keys if rank == HookType.SYNC.rank), default=0) + 1
            keys |= {(HookType.SYNC.rank, last if c.prune_last else c.wave) for c in plan.prune if not c.blocked}
    return len(keys) > 1


def _hook_steps(phase: HookType, hooks: Iterable[Hook]) -> list[SyncStep]:
    waves: dict[int, list[Hook]] = {}
    for hook in hooks:
        if hook.phase is phase:
            waves.setdefault(hook.wave, []).append(hook)
    return [SyncStep(phase, wave, hooks=tuple(sorted(waves[wave], key=_hook_key))) for wave in sorted(waves)]


def _hook_key(hook: Hook) -> tuple[str, str, str]:
    ref = hook.ref
    return ref.kind, ref.namespace, ref.name
