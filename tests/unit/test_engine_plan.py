from typing import Any

from agent.engine.autosync import LastSync, decide
from agent.engine.diff import differs, normalize, redact_secrets, remove_managed_fields, unified_diff
from agent.engine.options import sync_options, sync_wave
from agent.engine.plan import Action, make_plan
from agent.model import IgnoreDifference, ObjectRef, OperationPhase, RetryPolicy, SyncPolicy

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
    assert [[o.ref.name for o in objs] for _, objs in plan.waves()] == [["ns"], ["early"], ["plain", "d"], ["late"]]


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


def test_normalize_drops_server_fields_and_folds_string_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "uid": "x", "resourceVersion": "1",
                                                                 "generation": 3, "managedFields": []},
              "stringData": {"password": "hunter2"}, "status": {}}
    assert normalize(secret) == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                 "data": {"password": "aHVudGVyMg=="}}


def test_ignore_differences_by_pointer_and_by_manager() -> None:
    desired = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"},
               "spec": {"replicas": 2, "template": {"metadata": {"annotations": {"a": "1"}}}}}
    live = {**desired, "spec": {"replicas": 5, "template": {"metadata": {"annotations": {"a": "1", "hpa": "x"}}}}}
    live["metadata"] = {**desired["metadata"], "managedFields": [{"manager": "hpa", "fieldsV1": {
        "f:spec": {"f:template": {"f:metadata": {"f:annotations": {"f:hpa": {}}}}}}}]}
    assert differs(desired, live, [])
    by_pointer = IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/spec/replicas",))
    assert differs(desired, live, [by_pointer])
    by_manager = IgnoreDifference(kind="Deployment", group="apps", managed_fields_managers=("hpa",))
    assert not differs(desired, live, [by_pointer, by_manager])
    other_kind = IgnoreDifference(kind="StatefulSet", group="apps", json_pointers=("/spec/replicas",))
    assert differs(desired, live, [other_kind, by_manager])


def test_remove_managed_fields_follows_list_keys() -> None:
    obj = {"spec": {"containers": [{"name": "a", "image": "x", "env": []}, {"name": "b", "image": "y"}]}}
    remove_managed_fields(obj, {"f:spec": {"f:containers": {'k:{"name":"a"}': {"f:image": {}}}}})
    assert obj == {"spec": {"containers": [{"name": "a", "env": []}, {"name": "b", "image": "y"}]}}


def test_secret_values_never_appear_in_diffs() -> None:
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
            "data": {"user": "YWRtaW4=", "password": "b2xk"}}
    desired = {**live, "data": {"user": "YWRtaW4=", "password": "bmV3"}}
    diff = unified_diff(ObjectRef("", "Secret", "ns", "s"), live, desired)
    assert "b2xk" not in diff and "bmV3" not in diff and "YWRtaW4=" not in diff
    assert "-  password: <redacted value 2>" in diff and "+  password: <redacted value 3>" in diff
    assert "user: <redacted value 1>" in diff and "-  user" not in diff
    (plain,) = redact_secrets(cm("c", data={"k": "visible"}))
    assert plain is not None and plain["data"] == {"k": "visible"}


def test_new_revision_syncs_and_drift_needs_self_heal() -> None:
    synced = LastSync("aaa", OperationPhase.SUCCEEDED, 1, 100.0)
    assert decide(SyncPolicy(), out_of_sync=True, revision="bbb", last=synced, now=200).sync
    assert decide(SyncPolicy(), out_of_sync=True, revision="bbb", last=None, now=200).sync
    drift = decide(SyncPolicy(), out_of_sync=True, revision="aaa", last=synced, now=200)
    assert not drift.sync and "self-heal is off" in drift.reason
    assert decide(SyncPolicy(self_heal=True), out_of_sync=True, revision="aaa", last=synced, now=200).sync
    assert not decide(SyncPolicy(self_heal=True), out_of_sync=False, revision="aaa", last=synced, now=200).sync
    assert not decide(SyncPolicy(automated=False), out_of_sync=True, revision="bbb", last=synced, now=200).sync


def test_failed_revision_is_retried_with_backoff_up_to_the_limit() -> None:
    policy = SyncPolicy(retry=RetryPolicy(limit=2, backoff_duration=5, backoff_factor=2, backoff_max_duration=60))
    first = LastSync("aaa", OperationPhase.FAILED, 1, 100.0)
    waiting = decide(policy, out_of_sync=True, revision="aaa", last=first, now=102)
    assert not waiting.sync and waiting.retry_at == 105.0
    assert decide(policy, out_of_sync=True, revision="aaa", last=first, now=105).sync
    second = LastSync("aaa", OperationPhase.FAILED, 2, 200.0)
    assert decide(policy, out_of_sync=True, revision="aaa", last=second, now=209).retry_at == 210.0
    exhausted = decide(policy, out_of_sync=True, revision="aaa", last=LastSync("aaa", OperationPhase.FAILED, 3, 300),
                       now=10_000)
    assert not exhausted.sync and "failed 3 times" in exhausted.reason
    assert decide(SyncPolicy(), out_of_sync=True, revision="aaa", last=first, now=10_000).sync is False
    assert decide(policy, out_of_sync=True, revision="new", last=exhausted and LastSync(
        "aaa", OperationPhase.FAILED, 3, 300), now=301).sync


def test_retry_delay_grows_and_is_capped() -> None:
    retry = RetryPolicy(limit=5, backoff_duration=5, backoff_factor=2, backoff_max_duration=30)
    assert [retry.delay(n) for n in range(1, 6)] == [5, 10, 20, 30, 30]
