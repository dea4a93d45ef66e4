"""A project's verdict applied to a reconcile: plans refused as a whole, prune candidates outside the
project protected, automated syncs held by a window (not counted as attempts), the conditions shown.

The project is the payments team's AppProject from their Argo CD design (tests/support/projects.py
has the same as TOML for the integration tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from agent.config import AppSpec
from agent.controller.gate import ProjectGate
from agent.engine import status as statuses
from agent.engine.autosync import LastSync, SyncDecision, decide, held_by_window
from agent.engine.enforce import enforce
from agent.engine.plan import make_plan
from agent.engine.teardown import deletion_plan
from agent.errors import NotPermitted
from agent.model import (
    ConditionType,
    DeletePolicy,
    Destination,
    Hook,
    HookType,
    ObjectRef,
    OperationPhase,
    Plan,
    ProjectSpec,
    ResourceKind,
    SyncPolicy,
    SyncWindow,
)
from agent.policy import IN_CLUSTER_SERVER

REPO = "https://github.com/payments-engine/gitops.git"
PAYMENTS = ProjectSpec(
    name="payments-team",
    source_repos=(REPO,),
    destinations=(Destination(server=IN_CLUSTER_SERVER, namespace="payments"),
                  Destination(server=IN_CLUSTER_SERVER, namespace="payments-*")),
    cluster_resource_whitelist=(ResourceKind("", "Namespace"),),
    namespace_resource_whitelist=(ResourceKind("apps", "Deployment"), ResourceKind("", "Service"),
                                  ResourceKind("", "ConfigMap")),
)
APP = AppSpec(name="payment-service", repo=REPO, namespace="payments", project="payments-team")
NOON = 1_772_452_800.0  # 2026-03-02T12:00:00Z


def marked(api_version: str, kind: str, name: str, namespace: str = "", *, owner: str = APP.name) -> dict[str, Any]:
    """An object as the agent applies it for `owner`: label and tracking id."""
    group = api_version.rpartition("/")[0]
    tracking = f"{owner}:{group}/{kind}:{namespace}/{name}"
    meta: dict[str, Any] = {"name": name, "labels": {"gitops-agent.io/app": owner},
                            "annotations": {"gitops-agent.io/tracking-id": tracking}}
    if namespace:
        meta["namespace"] = namespace
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def gate(project: ProjectSpec | None = PAYMENTS) -> ProjectGate:
    return ProjectGate(lambda name: project if project is not None and name == project.name else None)


def plan_of(desired: list[dict[str, Any]], live: Sequence[dict[str, Any]] = (), **kwargs: Any) -> Plan:
    return make_plan(APP.name, desired, {ObjectRef.of(obj): obj for obj in live}, {},
                     policy=SyncPolicy(prune=True), **kwargs)


def test_an_object_the_project_does_not_permit_refuses_the_whole_plan() -> None:
    desired = [marked("v1", "ConfigMap", "settings", "payments"),
               marked("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "evil")]
    judged, window = gate().judge(APP, plan_of(desired), now=NOON, manual=False)
    assert judged.refusal == ("ClusterRoleBinding/evil is not permitted in project payments-team "
                              "(clusterResourceWhitelist)")
    assert judged.out_of_sync and window.allowed
    # The SyncError shows before any sync is tried, and stays (not only in the failed sync's message).
    assert statuses.conditions(judged)[-1].type is ConditionType.SYNC_ERROR
    assert statuses.conditions(judged)[-1].message == judged.refusal


def test_hooks_and_the_namespace_a_sync_creates_are_checked_too() -> None:
    job = marked("batch/v1", "Job", "migrate", "payments")
    hook = Hook(HookType.PRE_SYNC, job, 0, frozenset({DeletePolicy.BEFORE_HOOK_CREATION}))
    judged, _ = gate().judge(APP, plan_of([], hooks=[hook]), now=NOON, manual=False)
    assert judged.refusal == ("Job/payments/migrate is not permitted in project payments-team "
                              "(namespaceResourceWhitelist)")
    creating = replace(APP, sync_policy=SyncPolicy(options=frozenset({"CreateNamespace=true"})))
    assert gate().judge(creating, plan_of([]), now=NOON, manual=False)[0].refusal == ""
    strict = replace(PAYMENTS, cluster_resource_whitelist=())
    refused, _ = gate(strict).judge(creating, plan_of([]), now=NOON, manual=False)
    assert refused.refusal == "Namespace/payments is not permitted in project payments-team (clusterResourceWhitelist)"


def test_many_violations_are_summed_up_after_the_first_five() -> None:
    desired = [marked("v1", "Secret", f"s{index}", "payments") for index in range(7)]
    judged, _ = gate().judge(APP, plan_of(desired), now=NOON, manual=False)
    assert judged.refusal.count("is not permitted") == 5 and judged.refusal.endswith("(and 2 more)")


def test_prune_candidates_outside_the_project_are_never_pruned_nor_counted() -> None:
    inside = marked("v1", "ConfigMap", "old", "payments")
    outside = marked("v1", "ConfigMap", "stray", "kube-system")
    secret = marked("v1", "Secret", "creds", "payments")
    foreign = marked("v1", "ConfigMap", "theirs", "kube-system", owner="ledger")
    foreign["metadata"]["labels"]["gitops-agent.io/app"] = APP.name  # our label copied, not our tracking id
    judged, _ = gate().judge(APP, plan_of([marked("v1", "ConfigMap", "settings", "payments")],
                                          [inside, outside, secret, foreign]), now=NOON, manual=False)
    by_name = {candidate.ref.name: candidate for candidate in judged.prune}
    assert by_name["old"].blocked == ""
    for name in ("stray", "creds"):
        assert by_name[name].blocked == "not permitted in project payments-team: never pruned"
        assert by_name[name].extraneous_ignored
    assert by_name["theirs"].blocked.startswith("not owned by payment-service")
    assert [candidate.ref.name for candidate in judged.prune_order()] == ["old"]
    assert judged.refusal == "" and [c.ref.name for c in judged.requires_pruning] == ["old"]


def test_enforcing_twice_changes_nothing_and_the_projects_refusal_wins() -> None:
    plan = replace(plan_of([]), refusal="refusing to prune all 3 resources: the render is empty")
    once = enforce(plan, refusal="Secret/payments/x is not permitted in project p", protected=(), project="p")
    assert once.refusal.startswith("Secret/payments/x") and enforce(once, refusal="", protected=(), project="p") == once
    assert enforce(plan, refusal="", protected=(), project="p") is plan


def test_the_app_itself_is_refused_before_anything_is_fetched() -> None:
    assert gate().refusal(APP) is None
    elsewhere = gate().refusal(replace(APP, repo="https://github.com/someone/else.git"))
    assert isinstance(elsewhere, NotPermitted) and str(elsewhere) == (
        "repository https://github.com/someone/else.git is not permitted in project payments-team (not in sourceRepos)")
    system = gate().refusal(replace(APP, namespace="kube-system"))
    assert system is not None and str(system) == (
        f"namespace kube-system is not a permitted destination of project payments-team (server {IN_CLUSTER_SERVER})")
    missing = gate(None).refusal(APP)
    assert missing is not None and str(missing) == (
        "application payment-service belongs to project payments-team, which does not exist")
    assert ProjectGate().refusal(replace(APP, project="default")) is None, "Argo CD's default project permits all"


def test_destinations_match_the_cluster_the_reconciler_deploys_to() -> None:
    edge = replace(PAYMENTS, destinations=(Destination(name="edge", namespace="payments"),))
    assert gate(edge).refusal(APP) is not None
    assert ProjectGate(lambda name: edge, server="https://10.0.0.7:6443", cluster_name="edge").refusal(APP) is None


def test_a_teardown_keeps_what_lies_outside_the_project_or_everything_without_one() -> None:
    live = {ObjectRef.of(obj): obj for obj in (marked("v1", "ConfigMap", "settings", "payments"),
                                               marked("v1", "Secret", "creds", "payments"))}
    split = deletion_plan(APP.name, live, keep=gate().keeps(APP))
    assert [c.ref.name for c in split.delete] == ["settings"]
    assert [(c.ref.name, c.blocked) for c in split.kept] == [
        ("creds", "not permitted in project payments-team: never deleted")]
    orphaned = deletion_plan(APP.name, live, keep=gate(None).keeps(APP))
    assert not orphaned.delete and len(orphaned.kept) == 2


# ---------------------------------------------------------------------------- sync windows

ALWAYS_DENY = SyncWindow(kind="deny", schedule="* * * * *", duration="1h", applications=("payment-*",))


def test_an_automated_sync_held_by_a_window_is_no_attempt_and_comes_back_when_it_opens() -> None:
    project = replace(PAYMENTS, sync_windows=(ALWAYS_DENY,))
    window = gate(project).window(APP, now=NOON, manual=False)
    assert not window.allowed and window.opens_at is not None and window.opens_at > NOON
    assert window.reason.startswith("sync blocked by deny window '* * * * *' for 1h (UTC) of project payments-team; "
                                    "syncs are allowed again at ")
    due = decide(SyncPolicy(), out_of_sync=True, revision="bbb", last=LastSync("aaa", OperationPhase.SUCCEEDED, 1, 1.0),
                 now=NOON)
    held = held_by_window(due, blocked=window.reason, opens_at=window.opens_at)
    assert not held.sync and held.retry_at == window.opens_at and held.window == window.reason
    idle = SyncDecision(False, "in sync")
    assert held_by_window(idle, blocked=window.reason, opens_at=window.opens_at) is idle, "nothing to hold"
    conditions = statuses.conditions(plan_of([]), window=held.window)
    assert [(c.type, c.message) for c in conditions] == [(ConditionType.SYNC_WINDOW_WARNING, window.reason)]


def test_a_manual_sync_passes_a_window_only_with_manual_sync() -> None:
    closed = gate(replace(PAYMENTS, sync_windows=(ALWAYS_DENY,))).window(APP, now=NOON, manual=True)
    assert not closed.allowed and "deny window '* * * * *'" in closed.reason
    lenient = replace(ALWAYS_DENY, manual_sync=True)
    opened = gate(replace(PAYMENTS, sync_windows=(lenient,))).window(APP, now=NOON, manual=True)
    assert opened.allowed
    assert not gate(replace(PAYMENTS, sync_windows=(lenient,))).window(APP, now=NOON, manual=False).allowed


def test_a_blocked_decision_is_kept_until_the_window_opens_and_shared_by_apps_under_it() -> None:
    night = SyncWindow(kind="deny", schedule="0 22 * * *", duration="8h", applications=("payment-*",))
    project = replace(PAYMENTS, sync_windows=(night,))
    tables = {"payments-team": project}
    shared = ProjectGate(lambda name: tables.get(name))
    late = NOON + 11 * 3600  # 23:00
    first = shared.window(APP, now=late, manual=False)
    assert not first.allowed and first.opens_at == NOON + 18 * 3600  # 06:00 the next day
    assert shared.window(APP, now=late + 600, manual=False) is first
    assert shared.window(replace(APP, name="payment-ledger"), now=late + 600, manual=False) is first
    assert shared.window(APP, now=first.opens_at, manual=False).allowed
    tables["payments-team"] = replace(project, sync_windows=(replace(night, manual_sync=True),))
    assert shared.window(APP, now=late + 600, manual=True).allowed, "changed windows are decided afresh"
