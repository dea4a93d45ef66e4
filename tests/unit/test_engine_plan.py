"""The sync plan: which objects to create, update or prune, in which waves, and what blocks a prune."""

from typing import Any

from agent.engine.options import sync_options, sync_wave
from agent.engine.plan import Action, make_plan
from agent.engine.steps import sync_steps
from agent.model import ObjectRef, SyncPolicy

APP = "shop"


def cm(name: str, *, data: dict[str, str] | None = None, owner: str | None = APP,
       annotations: dict[str, str] | None = None, tracking: bool = True, **meta: Any) -> dict[str, Any]:
    md: dict[str, Any] = {"name": name, "namespace": "ns", **meta}
    notes = dict(annotations or {})
    if owner is not None:
        md["labels"] = {"gitops-agent.io/app": owner}
        if tracking:
            notes["gitops-agent.io/tracking-id"] = f"{owner}:/ConfigMap:ns/{name}"
    if notes:
        md["annotations"] = notes
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": md, "data": data or {}}


def ref(name: str) -> ObjectRef:
    return ObjectRef("", "ConfigMap", "ns", name)


def server_copy(obj: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What the API server returns: the object plus fields it owns."""
    copied: dict[str, Any] = {**obj, "metadata": {**obj["metadata"], "resourceVersion": "7", "uid": "u",
                                                  "creationTimestamp": "t", "managedFields": [{}]}}
    copied.update(extra)
    return copied


def test_new_changed_and_equal_objects_are_classified() -> None:
    desired = [cm("new"), cm("changed", data={"k": "2"}), cm("same", data={"k": "1"})]
    live = {ref("changed"): server_copy(cm("changed", data={"k": "1"})),
            ref("same"): server_copy(cm("same", data={"k": "1"}))}
    predicted = {ref("changed"): server_copy(cm("changed", data={"k": "2"})),
                 ref("same"): server_copy(cm("same", data={"k": "1"}), status={"x": 1})}
    plan = make_plan(APP, desired, live, predicted, policy=SyncPolicy())
    assert {o.ref.name: o.action for o in plan.objects} == {
        "new": Action.CREATE, "changed": Action.UPDATE, "same": Action.UNCHANGED}
    assert plan.out_of_sync


def test_a_dry_run_error_counts_as_a_needed_update_with_its_message() -> None:
    live = {ref("a"): server_copy(cm("a"))}
    plan = make_plan(APP, [cm("a")], live, {}, policy=SyncPolicy(), dry_run_errors={ref("a"): "field is immutable"})
    (obj,) = plan.objects
    assert (obj.action, obj.note) == (Action.UPDATE, "field is immutable")


def test_prune_candidates_need_label_and_tracking_id_and_no_prune_false() -> None:
    live = {
        ref("ours"): cm("ours"),
        ref("keep"): cm("keep", annotations={"argocd.argoproj.io/sync-options": "Prune=false"}),
        ref("foreign"): cm("foreign", tracking=False),
        ref("other"): {**cm("other"), "metadata": {**cm("other")["metadata"], "annotations": {
            "gitops-agent.io/tracking-id": "billing:/ConfigMap:ns/other"}}},
    }
    plan = make_plan(APP, [cm("x")], live, {}, policy=SyncPolicy(prune=True))
    blocked = {c.ref.name: c.blocked for c in plan.prune}
    assert blocked["ours"] == ""
    assert blocked["keep"] == "annotated Prune=false"
    assert blocked["foreign"].startswith("not owned by shop")
    assert blocked["other"] == "not owned by shop: tracking id is 'billing:/ConfigMap:ns/other'"
    assert [c.ref.name for c in plan.prune_order()] == ["ours"]
    assert {c.ref.name for c in plan.requires_pruning} == {"ours", "keep"}


def test_prune_off_blocks_every_candidate() -> None:
    plan = make_plan(APP, [cm("x")], {ref("old"): cm("old")}, {}, policy=SyncPolicy(prune=False))
    assert [c.blocked for c in plan.prune] == ["pruning is off"]
    assert plan.prune_order() == []
    assert plan.out_of_sync


def test_empty_render_is_refused_unless_allowed() -> None:
    live = {ref("a"): cm("a"), ref("b"): cm("b")}
    refused = make_plan(APP, [], live, {}, policy=SyncPolicy(prune=True))
    assert refused.refusal.startswith("refusing to prune all 2 resources: the render is empty")
    allowed = make_plan(APP, [], live, {}, policy=SyncPolicy(prune=True, allow_empty=True))
    assert allowed.refusal == ""
    assert make_plan(APP, [], live, {}, policy=SyncPolicy(prune=False)).refusal == ""


def test_waves_put_namespaces_and_crds_first_then_wave_then_kind_order() -> None:
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns", "annotations": {
        "gitops-agent.io/sync-wave": "3"}}}
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"}}
    late = cm("late", annotations={"argocd.argoproj.io/sync-wave": "1"})
    early = cm("early", annotations={"argocd.argoproj.io/sync-wave": "-1"})
    plan = make_plan(APP, [deploy, late, cm("plain"), early, ns], {}, {}, policy=SyncPolicy())
    steps = [[o.ref.name for o in step.objects] for step in sync_steps(plan) if not step.prune]
    assert steps == [["ns"], ["early"], ["plain", "d"], ["late"]]


def test_prune_order_is_reverse_wave_with_prune_last_at_the_end() -> None:
    def waved(name: str, wave: str, options: str = "") -> dict[str, Any]:
        notes = {"gitops-agent.io/sync-wave": wave}
        if options:
            notes["gitops-agent.io/sync-options"] = options
        return cm(name, annotations=notes)

    live = {ref(n): waved(n, w, o) for n, w, o in [("a", "0", ""), ("b", "5", ""), ("c", "9", "PruneLast=true"),
                                                     ("d", "2", "")]}
    plan = make_plan(APP, [cm("x")], live, {}, policy=SyncPolicy(prune=True))
    assert [c.ref.name for c in plan.prune_order()] == ["b", "d", "a", "c"]
    app_level = make_plan(APP, [cm("x")], live, {}, policy=SyncPolicy(prune=True,
                                                                      options=frozenset({"PruneLast=true"})))
    assert all(c.prune_last for c in app_level.prune)


def test_annotations_in_both_spellings() -> None:
    obj = cm("a", annotations={"argocd.argoproj.io/sync-options": "Prune=false, Replace=true",
                               "gitops-agent.io/sync-options": "PruneLast=true",
                               "gitops-agent.io/sync-wave": " -2 "})
    assert sync_options(obj) == {"Prune=false", "Replace=true", "PruneLast=true"}
    assert sync_wave(obj) == -2
    assert sync_wave(cm("b")) == 0
