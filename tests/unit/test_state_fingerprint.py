"""Proofs of sync (skip the dry-run of provably unchanged objects), inventory, and rebuild grouping."""

from __future__ import annotations

import copy
from typing import Any

from agent.controller.inventory import group_by_app
from agent.engine.fingerprint import (
    applied_versions,
    fingerprint,
    fingerprints,
    inventory,
    live_digest,
    proven_unchanged,
)
from agent.engine.plan import Action, make_plan
from agent.model import (
    AppliedVersion,
    Change,
    ChangeAction,
    ChangeSet,
    IgnoreDifference,
    InventoryEntry,
    ObjectRef,
    SyncPolicy,
)

APP = "shop"


def cm(name: str, value: str = "1", *, owner: str = APP, rv: str | None = None, tracked: bool = True) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns", "labels": {"gitops-agent.io/app": owner}}
    if tracked:
        meta["annotations"] = {"gitops-agent.io/tracking-id": f"{owner}:/ConfigMap:ns/{name}"}
    if rv is not None:
        meta["resourceVersion"] = rv
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": value}}


def ref(name: str) -> ObjectRef:
    return ObjectRef("", "ConfigMap", "ns", name)


def test_fingerprint_follows_the_object_and_its_ignore_rules_only() -> None:
    base = fingerprint(cm("a"))
    assert fingerprint(copy.deepcopy(cm("a"))) == base
    assert fingerprint(cm("a", "2")) != base
    rule = IgnoreDifference(kind="ConfigMap", json_pointers=("/data/k",))
    assert fingerprint(cm("a"), [rule]) != base
    assert fingerprint(cm("a"), [IgnoreDifference(kind="Secret", json_pointers=("/data",))]) == base


def test_proven_only_when_fingerprint_and_resource_version_both_match() -> None:
    prints = fingerprints([cm("same"), cm("edited"), cm("moved"), cm("unknown"), cm("absent")])
    live = {ref("same"): cm("same", rv="5"), ref("edited"): cm("edited", rv="5"), ref("moved"): cm("moved", rv="6"),
            ref("unknown"): cm("unknown", rv="5")}
    applied = {
        ref("same"): AppliedVersion(prints[ref("same")], "5"),
        ref("edited"): AppliedVersion(fingerprint(cm("edited", "0")), "5"),  # Git changed it since
        ref("moved"): AppliedVersion(prints[ref("moved")], "5"),  # someone wrote to it since
        ref("absent"): AppliedVersion(prints[ref("absent")], "5"),  # deleted since
    }
    assert proven_unchanged(prints, live, applied) == {ref("same")}


def test_proven_objects_are_unchanged_without_a_dry_run() -> None:
    desired = [cm("a")]
    live = {ref("a"): cm("a", rv="5")}
    plan = make_plan(APP, desired, live, {}, policy=SyncPolicy(), proven=frozenset({ref("a")}))
    assert plan.objects[0].action is Action.UNCHANGED and not plan.out_of_sync
    without = make_plan(APP, desired, live, {}, policy=SyncPolicy())
    assert without.objects[0].action is Action.UPDATE  # no dry-run result: must apply


def test_proofs_come_from_the_comparison_or_the_apply_response_never_a_later_read() -> None:
    desired = [cm("same"), cm("changed", "2"), cm("new"), cm("broken")]
    live = {ref("same"): cm("same", rv="5"), ref("changed"): cm("changed", rv="6"), ref("broken"): cm("broken", rv="7")}
    predicted = {ref("same"): cm("same", rv="5"), ref("changed"): cm("changed", "2", rv="6"),
                 ref("broken"): cm("broken", rv="7")}
    desired[3]["data"] = {"k": "x"}
    predicted[ref("broken")]["data"] = {"k": "x"}
    plan = make_plan(APP, desired, live, predicted, policy=SyncPolicy())
    prints = fingerprints(desired)
    assert applied_versions(plan, prints, changes=None, responses={}) == {
        ref("same"): AppliedVersion(prints[ref("same")], "5", live_digest(live[ref("same")]))}
    changes = ChangeSet((Change(ref("same"), ChangeAction.UNCHANGED), Change(ref("changed"), ChangeAction.CONFIGURED),
                         Change(ref("new"), ChangeAction.CREATED), Change(ref("broken"), ChangeAction.FAILED, "no")))
    responses = {ref("changed"): cm("changed", "2", rv="8"), ref("new"): cm("new", rv="9")}
    proofs = applied_versions(plan, prints, changes=changes, responses=responses)
    assert {r.name: p.resource_version for r, p in proofs.items()} == {"same": "5", "changed": "8", "new": "9"}


def test_inventory_keeps_existing_and_created_objects_and_drops_pruned_and_foreign_ones() -> None:
    desired = [cm("kept"), cm("new"), cm("failed")]
    live = {ref("kept"): cm("kept", rv="1"), ref("old"): cm("old", rv="2"), ref("left"): cm("left", rv="3"),
            ref("copied"): cm("copied", rv="4", tracked=False)}
    plan = make_plan(APP, desired, live, {ref("kept"): cm("kept", rv="1")}, policy=SyncPolicy(prune=True))
    changes = ChangeSet((Change(ref("new"), ChangeAction.CREATED), Change(ref("failed"), ChangeAction.FAILED, "x"),
                         Change(ref("old"), ChangeAction.PRUNED)))
    names = [entry.ref.name for entry in inventory(APP, plan, changes)]
    assert names == ["kept", "left", "new"]
    assert inventory(APP, plan, changes)[0] == InventoryEntry("v1", ref("kept"))


def test_rebuild_groups_by_label_and_counts_only_owned_objects() -> None:
    items = [cm("a"), cm("b", owner="other"), cm("c", tracked=False), cm("d", owner="stranger")]
    grouped = group_by_app(items, [APP, "other", "idle"])
    assert grouped == {APP: {InventoryEntry("v1", ref("a"))}, "other": {InventoryEntry("v1", ref("b"))},
                       "idle": set()}


def test_a_status_update_keeps_the_proof_and_a_content_change_breaks_it() -> None:
    desired = [cm("api")]
    seen = cm("api", rv="5")
    seen["status"] = {"phase": "old"}
    plan = make_plan(APP, desired, {ref("api"): seen}, {ref("api"): seen}, policy=SyncPolicy())
    prints = fingerprints(desired)
    proofs = applied_versions(plan, prints, changes=None, responses={})
    status_only = cm("api", rv="6")
    status_only["status"] = {"phase": "new"}
    status_only["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2"
    assert proven_unchanged(prints, {ref("api"): status_only}, proofs) == {ref("api")}
    edited = cm("api", "edited", rv="7")
    assert proven_unchanged(prints, {ref("api"): edited}, proofs) == frozenset()
