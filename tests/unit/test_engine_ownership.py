"""Shared objects: who may write an object two apps declare, and what both are told (issues 18 and 19)."""

from __future__ import annotations

from typing import Any

from agent.controller.claims import ClaimIndex
from agent.engine.plan import make_plan
from agent.model import AppStatus, Claims, ObjectRef, ResourceState, SyncPolicy, SyncStatus
from agent.model.core import ConditionType, HealthStatus

REF = ObjectRef("", "ConfigMap", "ns", "shared")


def cm(name: str = "shared", owner: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "ns"}
    if owner is not None:
        meta["labels"] = {"gitops-agent.io/app": owner}
        meta["annotations"] = {"gitops-agent.io/tracking-id": f"{owner}:/ConfigMap:ns/{name}"}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}}


def plan_of(app: str, live_owner: str | None, claims: Claims, *, options: frozenset[str] = frozenset(),
            adopt_existing: bool = True) -> Any:
    live = {REF: cm(owner=live_owner)} if live_owner != "absent" else {}
    return make_plan(app, [cm()], live, dict(live), policy=SyncPolicy(options=options), claims=claims,
                     adopt_existing=adopt_existing)


def test_an_object_another_app_owns_and_declares_is_not_applied_and_both_are_told() -> None:
    plan = plan_of("second", "first", Claims({REF: frozenset({"first"})}, frozenset({"first"})))
    (obj,) = plan.objects
    assert obj.shared and obj.blocked == "ConfigMap/ns/shared is owned by application 'first', which applied it first"
    assert not plan.to_apply and not plan.out_of_sync, "nothing a sync could do: no sync loop"
    (warning,) = plan.warnings
    assert warning.type is ConditionType.SHARED_RESOURCE_WARNING and "'first'" in warning.message

    owner = plan_of("first", "first", Claims({REF: frozenset({"second"})}, frozenset({"second"})))
    assert not owner.objects[0].blocked
    (told,) = owner.warnings
    assert told.message == "ConfigMap/ns/shared is also declared by application 'second'"


def test_an_owner_not_known_yet_keeps_its_object() -> None:
    plan = plan_of("second", "first", Claims())
    assert plan.objects[0].shared, "never take over what might still be declared"


def test_fail_on_shared_resource_fails_the_sync_instead() -> None:
    plan = plan_of("second", "first", Claims({REF: frozenset({"first"})}, frozenset({"first"})),
                   options=frozenset({"FailOnSharedResource=true"}))
    assert plan.refusal.startswith("Shared resource found: ConfigMap/ns/shared is owned by application 'first'")
    assert plan.out_of_sync


def test_an_object_its_owner_no_longer_declares_passes_to_the_app_that_does() -> None:
    taker = plan_of("second", "first", Claims({}, frozenset({"first"})))
    assert not taker.objects[0].blocked and not taker.warnings

    live = {REF: cm(owner="first")}
    giver = make_plan("first", [cm("other")], live, {}, policy=SyncPolicy(prune=True),
                      claims=Claims({REF: frozenset({"second"})}, frozenset({"second"})))
    (candidate,) = giver.prune
    assert candidate.blocked == "declared by application 'second', which takes it over"
    assert not giver.prune_order() and not giver.requires_pruning, "no prune, and not OutOfSync for it"


def test_adopting_an_unmanaged_object_is_the_default_and_can_be_refused() -> None:
    adopted = plan_of("app", None, Claims())
    assert not adopted.objects[0].blocked
    refused = plan_of("app", None, Claims(), adopt_existing=False)
    assert "the project does not allow adopting it (adopt_existing = false)" in refused.objects[0].blocked
    assert refused.warnings and not refused.out_of_sync


def status(name: str, *refs: ObjectRef, sync: SyncStatus = SyncStatus.SYNCED) -> AppStatus:
    return AppStatus(name, sync_status=sync,
                     resources=tuple(ResourceState(ref, SyncStatus.SYNCED, HealthStatus.HEALTHY) for ref in refs))


def test_the_claim_index_knows_who_declares_what_and_whom_a_change_concerns() -> None:
    index = ClaimIndex()
    other = ObjectRef("", "ConfigMap", "ns", "other")
    assert index.update("first", status("first", REF, other)) == set()
    assert index.update("second", status("second", REF)) == {"first"}
    assert index.claims("second", [REF]) == Claims({REF: frozenset({"first"})}, frozenset({"first"}))
    before = index.epoch("second")
    assert index.update("first", status("first", other)) == {"second"}
    assert index.epoch("second") == before + 1
    assert index.claims("second", [REF]) == Claims({}, frozenset({"first"})), "known, and no longer declaring it"
    assert index.update("new", status("new", sync=SyncStatus.UNKNOWN)) == set()
    assert "new" not in index.claims("second", [REF]).known, "never compared: its declarations are unknown"
    assert index.claims("second", [REF], owners={"first", "second", "new", ""}).known == frozenset({"first"}), \
        "asked about some owners: those known and not itself"
    index.forget("first")
    assert index.claims("second", [REF]).known == frozenset()
