"""The steps of a sync and gitops-engine's rule for when a step waits for health."""

from __future__ import annotations

from typing import Any

from agent.engine.hooks import hooks_of
from agent.engine.plan import make_plan
from agent.engine.steps import multi_step, selected, sync_fail_hooks, sync_steps
from agent.model import Hook, HookType, ObjectRef, SyncPolicy

APP = "shop"
WAVE = "argocd.argoproj.io/sync-wave"


def cm(name: str, wave: int = 0, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": name, "namespace": "ns", "annotations": {WAVE: str(wave)}, **meta}}


def hook(name: str, phase: str, wave: int = 0) -> Hook:
    obj = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": name, "namespace": "ns", "annotations": {"argocd.argoproj.io/hook": phase, WAVE: str(wave)}}}
    (found,) = hooks_of(obj, wave=wave, origin="f")
    return found


def describe(steps: list[Any]) -> list[str]:
    return [step.label + ": " + ",".join([o.ref.name for o in step.objects] + [h.ref.name for h in step.hooks])
            for step in steps]


def test_phases_then_waves_with_sync_hooks_beside_objects_and_prune_before_post_sync() -> None:
    hooks = [hook("after", "PostSync"), hook("migrate", "PreSync"), hook("page-up", "Sync", 1),
             hook("cleanup", "SyncFail"), hook("check", "PreSync", -1)]
    plan = make_plan(APP, [cm("b", 2), cm("a")], {}, {}, policy=SyncPolicy(), hooks=hooks)
    assert describe(sync_steps(plan)) == [
        "PreSync wave -1: check", "PreSync wave 0: migrate", "Sync wave 0: a", "Sync wave 1: page-up",
        "Sync wave 2: b", "prune: ", "PostSync wave 0: after"]
    assert [h.ref.name for h in sync_fail_hooks(plan)] == ["cleanup"]


def test_one_wave_without_hooks_is_one_step_and_does_not_wait_for_health() -> None:
    plan = make_plan(APP, [cm("a"), cm("b")], {}, {}, policy=SyncPolicy())
    assert not multi_step(plan, prune=True)


def test_two_waves_or_any_hook_phase_make_a_multi_step_sync() -> None:
    assert multi_step(make_plan(APP, [cm("a"), cm("b", 1)], {}, {}, policy=SyncPolicy()), prune=False)
    with_hook = make_plan(APP, [cm("a")], {}, {}, policy=SyncPolicy(), hooks=[hook("m", "PreSync")])
    assert multi_step(with_hook, prune=False)
    same_step = make_plan(APP, [cm("a")], {}, {}, policy=SyncPolicy(), hooks=[hook("m", "Sync")])
    assert not multi_step(same_step, prune=False), "a Sync hook in the objects' wave adds no step"


def test_prune_last_counts_as_a_later_step() -> None:
    live = {ObjectRef("", "ConfigMap", "ns", "old"): {**cm("old"), "metadata": {**cm("old")["metadata"], "labels": {
        "gitops-agent.io/app": APP}, "annotations": {"gitops-agent.io/tracking-id": f"{APP}:/ConfigMap:ns/old"}}}}
    plain = make_plan(APP, [cm("a")], live, {}, policy=SyncPolicy(prune=True))
    assert not multi_step(plain, prune=True)
    last = make_plan(APP, [cm("a")], live, {}, policy=SyncPolicy(prune=True, options=frozenset({"PruneLast=true"})))
    assert multi_step(last, prune=True) and not multi_step(last, prune=False)


def test_a_selective_sync_runs_only_its_objects_without_hooks_or_prune() -> None:
    plan = make_plan(APP, [cm("a"), cm("b", 1)], {}, {}, policy=SyncPolicy(), hooks=[hook("m", "PreSync")])
    steps = sync_steps(plan, selection=[ObjectRef("", "ConfigMap", "", "b")])
    assert describe(steps) == ["Sync wave 1: b"]
    assert not multi_step(plan, prune=True, selection=[ObjectRef("", "ConfigMap", "", "b")])


def test_selection_matches_any_namespace_when_left_out_and_globs_kinds() -> None:
    ref = ObjectRef("apps", "Deployment", "ns", "api")
    assert selected(ref, [ObjectRef("apps", "Deployment", "", "api")])
    assert selected(ref, [ObjectRef("*", "*", "ns", "api")])
    assert not selected(ref, [ObjectRef("apps", "Deployment", "other", "api")])
    assert not selected(ref, [ObjectRef("", "Deployment", "ns", "api")])
    assert HookType.PRE_SYNC.rank < HookType.SYNC.rank < HookType.POST_SYNC.rank < HookType.SYNC_FAIL.rank
