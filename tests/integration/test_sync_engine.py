"""The sync engine on the real cluster: one behaviour per test (issue: sync engine)."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
import yaml

from agent.kube import KubeClient
from agent.model import (
    ChangeAction,
    IgnoreDifference,
    ObjectRef,
    OperationPhase,
    OperationRequest,
    RetryPolicy,
    SyncPolicy,
    SyncStatus,
)
from tests.integration.helpers import configmap, deployment, eventually
from tests.integration.sync_support import Harness, actions, annotated
from tests.support.gitserver import WorkTree


async def test_create_update_and_unchanged_keep_resource_version(make_harness: Any, repo: WorkTree) -> None:
    repo.commit_and_push({"app/a.yaml": configmap("a", {"k": "1"}), "app/b.yaml": configmap("b", {"k": "1"})}, "one")
    app = make_harness()
    first = await app.reconcile()
    assert actions(first) == {"a(ConfigMap)": "created", "b(ConfigMap)": "created"}
    assert first.sync_status is SyncStatus.SYNCED
    b_version = (await app.live("ConfigMap", "b"))["metadata"]["resourceVersion"]

    repo.commit_and_push({"app/a.yaml": configmap("a", {"k": "2"})}, "two")
    second = await app.reconcile()
    assert actions(second) == {"a(ConfigMap)": "configured", "b(ConfigMap)": "unchanged"}
    assert (await app.live("ConfigMap", "a"))["data"] == {"k": "2"}
    assert (await app.live("ConfigMap", "b"))["metadata"]["resourceVersion"] == b_version

    third = await app.reconcile()
    assert third.sync is None and third.sync_status is SyncStatus.SYNCED
    assert (await app.live("ConfigMap", "b"))["metadata"]["resourceVersion"] == b_version


async def test_file_deleted_in_git_is_pruned(make_harness: Any, repo: WorkTree) -> None:
    repo.commit_and_push({"app/a.yaml": configmap("a", {}), "app/b.yaml": configmap("b", {})}, "both")
    app = make_harness(SyncPolicy(prune=True))
    await app.reconcile()
    repo.commit_and_push({"app/b.yaml": None}, "drop b")
    result = await app.reconcile()
    assert actions(result) == {"a(ConfigMap)": "unchanged", "b(ConfigMap)": "pruned"}
    assert result.sync_status is SyncStatus.SYNCED
    await eventually(lambda: _gone(app, "ConfigMap", "b"), what="ConfigMap b to be deleted")


async def _gone(app: Harness, kind: str, name: str) -> bool:
    return await app.live(kind, name) is None


async def test_prune_off_reports_instead_of_deleting(make_harness: Any, repo: WorkTree) -> None:
    repo.commit_and_push({"app/a.yaml": configmap("a", {}), "app/b.yaml": configmap("b", {})}, "both")
    app = make_harness(SyncPolicy(prune=False))
    await app.reconcile()
    repo.commit_and_push({"app/b.yaml": None}, "drop b")
    result = await app.reconcile()
    assert result.sync_status is SyncStatus.OUT_OF_SYNC
    assert result.requires_pruning == 1
    assert await app.live("ConfigMap", "b") is not None
    status = app.controller.status(app.name)
    assert status is not None and "1 resources require pruning" in status.message


async def test_prune_false_annotation_keeps_the_object_and_the_app_out_of_sync(make_harness: Any,
                                                                               repo: WorkTree) -> None:
    repo.commit_and_push({"app/keep.yaml": annotated(configmap("keep", {}), **{
        "argocd.argoproj.io/sync-options": "Prune=false"}), "app/a.yaml": configmap("a", {})}, "one")
    app = make_harness(SyncPolicy(prune=True))
    await app.reconcile()
    repo.commit_and_push({"app/keep.yaml": None}, "drop keep")
    result = await app.reconcile()
    assert await app.live("ConfigMap", "keep") is not None
    assert result.sync_status is SyncStatus.OUT_OF_SYNC
    assert actions(result)["keep(ConfigMap)"] == "skipped"
    assert result.requires_pruning == 1


async def test_prune_runs_in_reverse_wave_order_and_prune_last_at_the_end(make_harness: Any, repo: WorkTree) -> None:
    wave = "gitops-agent.io/sync-wave"
    repo.commit_and_push({
        "app/keep.yaml": configmap("keep", {}),
        "app/w0.yaml": annotated(configmap("w0", {}), **{wave: "0"}),
        "app/w5.yaml": annotated(configmap("w5", {}), **{wave: "5"}),
        "app/w2.yaml": annotated(configmap("w2", {}), **{wave: "2"}),
        "app/last.yaml": annotated(configmap("last", {}), **{"gitops-agent.io/sync-options": "PruneLast=true",
                                                             wave: "9"}),
    }, "five")
    app = make_harness(SyncPolicy(prune=True))
    created = await app.reconcile()
    assert [c.ref.name for c in created.sync.changes.entries] == ["keep", "w0", "w2", "w5", "last"]  # type: ignore[union-attr]
    repo.commit_and_push({f"app/{n}.yaml": None for n in ("w0", "w5", "w2", "last")}, "drop four")
    result = await app.reconcile()
    assert result.sync is not None
    pruned = [c.ref.name for c in result.sync.changes.entries if c.action is ChangeAction.PRUNED]
    assert pruned == ["w5", "w2", "w0", "last"]


async def test_empty_render_with_prune_is_refused_unless_allowed(make_harness: Any, repo: WorkTree) -> None:
    repo.commit_and_push({"app/a.yaml": configmap("a", {}), "app/README.md": "x"}, "one")
    app = make_harness(SyncPolicy(prune=True))
    await app.reconcile()
    repo.commit_and_push({"app/a.yaml": None}, "everything gone")
    refused = await app.reconcile()
    assert refused.sync is not None and refused.sync.phase is OperationPhase.FAILED
    assert "refusing to prune all 1 resources: the render is empty" in refused.sync.message
    assert await app.live("ConfigMap", "a") is not None



async def test_empty_render_prunes_everything_when_allowed(make_harness: Any, repo: WorkTree) -> None:
    repo.commit_and_push({"app/a.yaml": configmap("a", {}), "app/README.md": "x"}, "one")
    app = make_harness(SyncPolicy(prune=True, allow_empty=True))
    await app.reconcile()
    repo.commit_and_push({"app/a.yaml": None}, "everything gone")
    result = await app.reconcile()
    assert actions(result) == {"a(ConfigMap)": "pruned"}
    assert result.sync_status is SyncStatus.SYNCED


async def test_objects_not_ours_are_never_pruned(make_harness: Any, repo: WorkTree, kube: KubeClient,
                                                 namespace: str) -> None:
    def foreign(name: str, labels: dict[str, str], annotations: dict[str, str]) -> dict[str, Any]:
        return {"apiVersion": "v1", "kind": "ConfigMap", "data": {"owner": "someone else"},
                "metadata": {"name": name, "namespace": namespace, "labels": labels, "annotations": annotations}}

    app = make_harness(SyncPolicy(prune=True))
    await kube.apply(foreign("other-app", {"gitops-agent.io/app": "other"},
                             {"gitops-agent.io/tracking-id": f"other:/ConfigMap:{namespace}/other-app"}))
    await kube.apply(foreign("label-only", {"gitops-agent.io/app": app.name}, {}))
    await kube.apply(foreign("copied", {"gitops-agent.io/app": app.name},
                             {"gitops-agent.io/tracking-id": f"other:/ConfigMap:{namespace}/copied"}))
    await kube.apply(foreign("unlabelled", {}, {}))
    repo.commit_and_push({"app/mine.yaml": configmap("mine", {})}, "one")
    first = await app.reconcile()
    assert first.sync_status is SyncStatus.SYNCED, first.sync
    repo.commit_and_push({"app/mine.yaml": None, "app/other.yaml": configmap("other-app-not", {})}, "swap")
    result = await app.reconcile()
    for name in ("other-app", "label-only", "copied", "unlabelled"):
        live = await app.live("ConfigMap", name)
        assert live is not None and live["data"] == {"owner": "someone else"}, name
    assert actions(result)["mine(ConfigMap)"] == "pruned"
    assert f"not owned by {app.name}" in next(c.message for c in result.sync.changes.entries  # type: ignore[union-attr]
                                      if c.ref.name == "label-only")


async def _scale(kube: KubeClient, namespace: str, name: str, replicas: int) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"
    await kube.request("PATCH", path, body={"spec": {"replicas": replicas}},
                       content_type="application/merge-patch+json")


@pytest.mark.parametrize("self_heal", [True, False])
async def test_outside_scale_is_reverted_only_with_self_heal(make_harness: Any, repo: WorkTree, kube: KubeClient,
                                                             namespace: str, self_heal: bool) -> None:
    repo.commit_and_push({"app/api.yaml": deployment("api", replicas=1)}, "one")
    app = make_harness(SyncPolicy(self_heal=self_heal))
    await app.reconcile()
    await _scale(kube, namespace, "api", 3)
    await app.seen("Deployment", "api", "apps/v1", lambda live: live["spec"]["replicas"] == 3)
    result = await app.reconcile()
    replicas = (await app.live("Deployment", "api", "apps/v1"))["spec"]["replicas"]
    if self_heal:
        assert result.sync is not None and actions(result) == {"api(Deployment)": "configured"}
        assert replicas == 1
        assert result.sync_status is SyncStatus.SYNCED
    else:
        assert result.sync is None
        assert replicas == 3
        assert result.sync_status is SyncStatus.OUT_OF_SYNC
        assert "self-heal is off" in (result.decision.reason if result.decision else "")
        assert "replicas: 1" in result.diffs[ObjectRef("apps", "Deployment", namespace, "api")]
        manual = await app.reconcile(OperationRequest())
        assert manual.sync is not None and manual.sync_status is SyncStatus.SYNCED
        assert (await app.live("Deployment", "api", "apps/v1"))["spec"]["replicas"] == 1


async def test_ignore_differences_lets_an_outside_replica_change_stand(make_harness: Any, repo: WorkTree,
                                                                      kube: KubeClient, namespace: str) -> None:
    repo.commit_and_push({"app/api.yaml": deployment("api", replicas=1)}, "one")
    ignore = (IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/spec/replicas",)),)
    app = make_harness(SyncPolicy(self_heal=True), ignore=ignore)
    await app.reconcile()
    await _scale(kube, namespace, "api", 4)
    await app.seen("Deployment", "api", "apps/v1", lambda live: live["spec"]["replicas"] == 4)
    result = await app.reconcile()
    assert result.sync is None and result.sync_status is SyncStatus.SYNCED
    assert (await app.live("Deployment", "api", "apps/v1"))["spec"]["replicas"] == 4


async def test_crd_and_custom_resource_in_one_sync(make_harness: Any, repo: WorkTree, kube: KubeClient) -> None:
    group = f"t{secrets.token_hex(4)}.example.com"
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"widgets.{group}"},
        "spec": {"group": group, "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                     "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}]},
    }
    widget = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}
    repo.commit_and_push({"app/crd.yaml": yaml.safe_dump(crd), "app/widget.yaml": yaml.safe_dump(widget)}, "crd+cr")
    app = make_harness()
    try:
        result = await app.reconcile()
        assert result.sync is not None and result.sync.phase is OperationPhase.SUCCEEDED, result.sync
        assert actions(result) == {f"widgets.{group}(CustomResourceDefinition)": "created", "w(Widget)": "created"}
        live = await app.live("Widget", "w", f"{group}/v1")
        assert live["spec"] == {"size": 3}
        again = await app.reconcile()
        assert again.sync is None and again.sync_status is SyncStatus.SYNCED
    finally:
        await kube.delete(crd)


async def test_create_namespace_option(make_harness: Any, repo: WorkTree, kube: KubeClient) -> None:
    target = f"created-{secrets.token_hex(4)}"
    repo.commit_and_push({"app/a.yaml": configmap("a", {})}, "one")
    app = make_harness(SyncPolicy(options=frozenset({"CreateNamespace=true"})), app_namespace=target)
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": target}}
    try:
        result = await app.reconcile()
        assert result.sync is not None and result.sync.phase is OperationPhase.SUCCEEDED, result.sync.message
        live_ns = await kube.get(ns)
        assert live_ns is not None
        assert "gitops-agent.io/app" not in (live_ns["metadata"].get("labels") or {}), "never prunable"
        assert await kube.get({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "a", "namespace": target}}) is not None
    finally:
        await kube.delete(ns)


def job(image: str, *, options: str = "") -> str:
    annotations = {"argocd.argoproj.io/sync-options": options} if options else {}
    return yaml.safe_dump({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "migrate", "annotations": annotations}, "spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "m", "image": image}]}}}})


@pytest.mark.parametrize("options", ["Force=true", "Force=true,Replace=true"])
async def test_immutable_field_change_fails_and_force_recreates(make_harness: Any, repo: WorkTree,
                                                                options: str) -> None:
    repo.commit_and_push({"app/job.yaml": job("migrate:v1")}, "v1")
    app = make_harness(SyncPolicy(health_timeout=20))
    first = await app.reconcile()
    assert first.sync is not None and first.sync.phase is OperationPhase.SUCCEEDED, first.sync.message
    uid = (await app.live("Job", "migrate", "batch/v1"))["metadata"]["uid"]

    repo.commit_and_push({"app/job.yaml": job("migrate:v2")}, "v2")
    failed = await app.reconcile()
    assert failed.sync is not None and failed.sync.phase is OperationPhase.FAILED
    assert "field is immutable" in failed.sync.message and failed.sync.message.startswith("Job/")

    repo.commit_and_push({"app/job.yaml": job("migrate:v2", options=options)}, "v2 forced")
    replaced = await app.reconcile()
    assert replaced.sync is not None and replaced.sync.phase is OperationPhase.SUCCEEDED, replaced.sync.message
    live = await app.live("Job", "migrate", "batch/v1")
    assert live["metadata"]["uid"] != uid
    assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "migrate:v2"


async def test_replace_puts_the_whole_object_and_drops_what_others_set(make_harness: Any, repo: WorkTree,
                                                                      kube: KubeClient, namespace: str) -> None:
    replaced = annotated(configmap("replaced", {"k": "1"}), **{"argocd.argoproj.io/sync-options": "Replace=true"})
    repo.commit_and_push({"app/replaced.yaml": replaced, "app/applied.yaml": configmap("applied", {"k": "1"})}, "one")
    app = make_harness()
    created = await app.reconcile()
    assert actions(created) == {"applied(ConfigMap)": "created", "replaced(ConfigMap)": "created"}
    for name in ("replaced", "applied"):  # another writer adds a key
        path = f"/api/v1/namespaces/{namespace}/configmaps/{name}"
        await kube.request("PATCH", path, body={"data": {"extra": "x"}}, content_type="application/merge-patch+json",
                           query={"fieldManager": "someone-else"})
    replaced = annotated(configmap("replaced", {"k": "2"}), **{"argocd.argoproj.io/sync-options": "Replace=true"})
    repo.commit_and_push({"app/replaced.yaml": replaced, "app/applied.yaml": configmap("applied", {"k": "2"})}, "two")
    result = await app.reconcile()
    assert result.sync is not None and result.sync.phase is OperationPhase.SUCCEEDED, result.sync.message
    assert (await app.live("ConfigMap", "replaced"))["data"] == {"k": "2"}, "a replace drops the other writer's key"
    assert (await app.live("ConfigMap", "applied"))["data"] == {"k": "2", "extra": "x"}, "an apply keeps it"

    repo.commit_and_push({"app/job.yaml": job("migrate:v1", options="Replace=true")}, "a job")
    await app.reconcile()
    repo.commit_and_push({"app/job.yaml": job("migrate:v2", options="Replace=true")}, "its template changes")
    refused = await app.reconcile()
    assert refused.sync is not None and refused.sync.phase is OperationPhase.FAILED
    assert "field is immutable" in refused.sync.message, "Replace=true alone replaces, it does not recreate"


async def test_waves_are_applied_in_order_and_wait_for_health(make_harness: Any, repo: WorkTree) -> None:
    wave = "argocd.argoproj.io/sync-wave"
    stuck = yaml.safe_load(deployment("db", replicas=1))
    stuck["metadata"]["annotations"] = {wave: "0"}
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"no-such-node": "true"}
    repo.commit_and_push({"app/db.yaml": yaml.safe_dump(stuck),
                          "app/api.yaml": annotated(configmap("api", {}), **{wave: "1"})}, "db then api")
    app = make_harness(SyncPolicy(health_timeout=1.5))
    blocked = await app.reconcile()
    assert blocked.sync is not None and blocked.sync.phase is OperationPhase.FAILED
    assert "timed out after 2s waiting for health: Deployment/" in blocked.sync.message
    assert actions(blocked)["api(ConfigMap)"] == "skipped"
    assert await app.live("ConfigMap", "api") is None, "wave 1 must wait for wave 0 to be healthy"

    del stuck["spec"]["template"]["spec"]["nodeSelector"]
    repo.commit_and_push({"app/db.yaml": yaml.safe_dump(stuck)}, "schedulable")
    done = await app.reconcile()
    assert done.sync is not None and done.sync.phase is OperationPhase.SUCCEEDED, done.sync.message
    assert [c.ref.name for c in done.sync.changes.entries] == ["db", "api"]


async def test_invalid_object_fails_with_the_api_message_and_stops_later_waves(make_harness: Any,
                                                                               repo: WorkTree) -> None:
    bad = yaml.safe_load(deployment("bad"))
    bad["spec"]["replicas"] = -1
    bad["metadata"]["annotations"] = {"gitops-agent.io/sync-wave": "0"}
    later = annotated(configmap("later", {}), **{"gitops-agent.io/sync-wave": "1"})
    repo.commit_and_push({"app/bad.yaml": yaml.safe_dump(bad), "app/later.yaml": later}, "bad")
    app = make_harness()
    result = await app.reconcile()
    assert result.sync is not None and result.sync.phase is OperationPhase.FAILED
    assert result.sync.message.startswith("Deployment/") and "spec.replicas" in result.sync.message
    assert actions(result) == {"bad(Deployment)": "failed", "later(ConfigMap)": "skipped"}
    assert await app.live("ConfigMap", "later") is None
    status = app.controller.status(app.name)
    assert status is not None and status.sync_status is SyncStatus.OUT_OF_SYNC
    assert status.conditions and status.conditions[-1].type.value == "SyncError"


async def test_retry_stops_after_the_limit_and_resumes_on_a_new_commit(make_harness: Any, repo: WorkTree) -> None:
    bad = yaml.safe_load(deployment("api"))
    bad["spec"]["replicas"] = -1
    repo.commit_and_push({"app/api.yaml": yaml.safe_dump(bad)}, "broken")
    app = make_harness(SyncPolicy(retry=RetryPolicy(limit=2, backoff_duration=0.05, backoff_factor=1)))
    attempts = 0
    for _ in range(8):
        result = await app.reconcile()
        if result.sync is not None:
            attempts += 1
        elif result.decision and result.decision.retry_at:
            due = result.decision.retry_at
            await eventually(lambda due=due: time.time() >= due, within=2, interval=0.02, what="retry to be due")
    assert attempts == 3, "one sync and two retries"
    assert result.decision is not None and "failed 3 times; waiting for a new commit" in result.decision.reason

    repo.commit_and_push({"app/api.yaml": deployment("api")}, "fixed")
    fixed = await app.reconcile()
    assert fixed.sync is not None and fixed.sync.phase is OperationPhase.SUCCEEDED


async def test_manual_sync_dry_run_changes_nothing_and_shows_the_diff(make_harness: Any, repo: WorkTree) -> None:
    repo.commit_and_push({"app/a.yaml": configmap("a", {"k": "1"})}, "one")
    app = make_harness(SyncPolicy(automated=False))
    compared = await app.reconcile()
    assert compared.sync is None and compared.sync_status is SyncStatus.OUT_OF_SYNC
    assert await app.live("ConfigMap", "a") is None
    dry = await app.reconcile(OperationRequest(dry_run=True))
    assert dry.sync is None and await app.live("ConfigMap", "a") is None
    diff = dry.diffs[ObjectRef("", "ConfigMap", app.namespace, "a")]
    assert "+data:" in diff and "+  k: '1'" in diff
    synced = await app.reconcile(OperationRequest())
    assert synced.sync is not None and synced.sync_status is SyncStatus.SYNCED
