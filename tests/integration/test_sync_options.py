"""Argo CD's sync options and settings on the real cluster (issue 19): the app-level Prune=false,
selective sync, jq ignore rules, RespectIgnoreDifferences, Validate=false, and one-wave syncs that do
not wait for health."""

from __future__ import annotations

import asyncio

import yaml

from agent.kube import KubeClient
from agent.model import (
    ChangeAction,
    HealthStatus,
    IgnoreDifference,
    ObjectRef,
    OperationPhase,
    OperationRequest,
    SyncPolicy,
    SyncStatus,
)
from tests.integration.helpers import configmap, deployment, eventually
from tests.integration.sync_support import MakeHarness, actions, annotated
from tests.support.gitserver import WorkTree

SIDECAR = '.spec.template.spec.containers[] | select(.name == "proxy") | .image'


def with_sidecar(name: str, *, image: str = "registry.example.com/api:v1", proxy: str = "proxy:v1") -> str:
    obj = yaml.safe_load(deployment(name, image=image))
    obj["spec"]["template"]["spec"]["containers"].append({"name": "proxy", "image": proxy})
    return yaml.safe_dump(obj)


async def test_app_level_prune_false_keeps_what_git_dropped(make_harness: MakeHarness, repo: WorkTree) -> None:
    repo.commit_and_push({"app/a.yaml": configmap("a", {}), "app/b.yaml": configmap("b", {})}, "both")
    app = make_harness(SyncPolicy(prune=True, options=frozenset({"Prune=false"})))
    await app.reconcile()
    repo.commit_and_push({"app/b.yaml": None}, "drop b")
    result = await app.reconcile()
    assert await app.live("ConfigMap", "b") is not None, "prune = true, but the app says Prune=false"
    assert actions(result)["b(ConfigMap)"] == "skipped" and result.requires_pruning == 1
    assert result.sync_status is SyncStatus.OUT_OF_SYNC


async def test_selective_sync_applies_only_the_named_objects(make_harness: MakeHarness, repo: WorkTree) -> None:
    repo.commit_and_push({"app/a.yaml": configmap("a", {"v": "1"}), "app/b.yaml": configmap("b", {"v": "1"}),
                          "app/old.yaml": configmap("old", {})}, "one")
    app = make_harness(SyncPolicy(automated=False, prune=True))
    await app.reconcile(OperationRequest())
    repo.commit_and_push({"app/a.yaml": configmap("a", {"v": "2"}), "app/b.yaml": configmap("b", {"v": "2"}),
                          "app/old.yaml": None}, "two")
    wanted = ObjectRef("", "ConfigMap", "", "a")  # no namespace: the object of that name in any
    result = await app.reconcile(OperationRequest(resources=(wanted,)))
    assert result.sync is not None and result.sync.phase is OperationPhase.SUCCEEDED, result.sync.message
    assert actions(result) == {"a(ConfigMap)": "configured"}
    assert (await app.live("ConfigMap", "a"))["data"] == {"v": "2"}
    assert (await app.live("ConfigMap", "b"))["data"] == {"v": "1"}, "not selected"
    assert await app.live("ConfigMap", "old") is not None, "a selective sync prunes nothing"
    assert result.sync_status is SyncStatus.OUT_OF_SYNC, "b and old are still out of sync"

    unknown = await app.reconcile(OperationRequest(resources=(ObjectRef("", "ConfigMap", "", "nope"),)))
    assert unknown.sync is not None and unknown.sync.phase is OperationPhase.FAILED
    assert "ConfigMap/nope: not a resource of application" in unknown.sync.message


async def test_a_jq_rule_lets_a_sidecar_image_injected_by_someone_else_stand(make_harness: MakeHarness, repo: WorkTree,
                                                                             kube: KubeClient, namespace: str) -> None:
    repo.commit_and_push({"app/api.yaml": with_sidecar("api")}, "one")
    rule = IgnoreDifference(kind="Deployment", group="apps", jq_path_expressions=(SIDECAR,))
    app = make_harness(SyncPolicy(self_heal=True, options=frozenset({"RespectIgnoreDifferences=true"})),
                       ignore=(rule,))
    await app.reconcile()
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments/api"
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "proxy:v9"}]}}}}
    await kube.request("PATCH", path, body=patch, content_type="application/strategic-merge-patch+json",
                       query={"fieldManager": "mesh-injector"})
    await app.seen("Deployment", "api", "apps/v1",
                   lambda live: "proxy:v9" in [c["image"] for c in live["spec"]["template"]["spec"]["containers"]])
    result = await app.reconcile()
    assert result.sync is None and result.sync_status is SyncStatus.SYNCED, "the ignored image is no drift"

    repo.commit_and_push({"app/api.yaml": with_sidecar("api", image="registry.example.com/api:v2")}, "new api")
    synced = await app.reconcile()
    assert synced.sync is not None and synced.sync.phase is OperationPhase.SUCCEEDED
    images = {c["name"]: c["image"] for c in (await app.live("Deployment", "api", "apps/v1"))["spec"]["template"][
        "spec"]["containers"]}
    assert images == {"main": "registry.example.com/api:v2", "proxy": "proxy:v9"}, \
        "RespectIgnoreDifferences: the sync leaves the ignored field as it is live"


async def test_validate_false_with_replace_drops_unknown_fields_instead_of_failing(make_harness: MakeHarness,
                                                                                  repo: WorkTree) -> None:
    sloppy = yaml.safe_load(configmap("sloppy", {"k": "v"}))
    sloppy["dta"] = {"typo": "x"}
    repo.commit_and_push({"app/sloppy.yaml": yaml.safe_dump(sloppy)}, "an unknown field")
    strict = make_harness(SyncPolicy(options=frozenset({"Replace=true"})))
    refused = await strict.reconcile()
    assert refused.sync is not None and refused.sync.phase is OperationPhase.FAILED
    assert "dta" in refused.sync.message
    lenient = make_harness(SyncPolicy(options=frozenset({"Replace=true", "Validate=false"})))
    result = await lenient.reconcile()
    assert result.sync is not None and result.sync.phase is OperationPhase.SUCCEEDED, result.sync.message
    assert (await lenient.live("ConfigMap", "sloppy"))["data"] == {"k": "v"}


async def test_a_one_wave_sync_ends_once_applied_and_health_is_reported_on_its_own(
        make_harness: MakeHarness, repo: WorkTree) -> None:
    never = yaml.safe_load(deployment("api"))
    never["spec"]["template"]["spec"]["nodeSelector"] = {"example.com/no-such-node": "true"}
    ingress = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "edge"},
               "spec": {"defaultBackend": {"service": {"name": "api", "port": {"number": 80}}}}}
    repo.commit_and_push({"app/api.yaml": yaml.safe_dump(never), "app/edge.yaml": yaml.safe_dump(ingress),
                          "app/settings.yaml": configmap("settings", {})}, "nothing here ever becomes healthy")
    app = make_harness(SyncPolicy(health_timeout=600))
    result = await app.reconcile()
    assert result.sync is not None and result.sync.phase is OperationPhase.SUCCEEDED, result.sync.message
    assert result.sync_status is SyncStatus.SYNCED
    assert result.health_status is HealthStatus.PROGRESSING
    ingress_row = next(r for r in result.status.resources if r.ref.kind == "Ingress")
    assert ingress_row.health_message == "Waiting for the ingress controller to assign an address"


async def test_a_multi_wave_sync_says_what_it_waits_for(make_harness: MakeHarness, repo: WorkTree) -> None:
    wave = "argocd.argoproj.io/sync-wave"
    stuck = [yaml.safe_load(deployment(name)) for name in ("db", "cache")]
    for obj in stuck:
        obj["spec"]["template"]["spec"]["nodeSelector"] = {"example.com/no-such-node": "true"}
    repo.commit_and_push({"app/db.yaml": yaml.safe_dump(stuck[0]), "app/cache.yaml": yaml.safe_dump(stuck[1]),
                          "app/api.yaml": annotated(configmap("api", {}), **{wave: "1"})}, "two waves")
    app = make_harness(SyncPolicy(health_timeout=4))
    sync = asyncio.create_task(app.reconcile())

    def waiting() -> bool:
        status = app.controller.status(app.name)
        return status is not None and status.operation_phase is OperationPhase.RUNNING and \
            status.message == "waiting for healthy state of apps/Deployment/cache and 1 more resources"

    await eventually(waiting, within=4, interval=0.05, what="the sync saying what it waits for")
    status = app.controller.status(app.name)
    # Not Unknown while it waits: the health of what is there (the wave-1 ConfigMap is not, yet).
    assert status is not None and status.health_status is HealthStatus.MISSING
    assert {r.ref.name: r.health_status for r in status.resources}["db"] is HealthStatus.PROGRESSING
    result = await asyncio.wait_for(sync, timeout=20)
    assert result.sync is not None and result.sync.phase is OperationPhase.FAILED
    assert result.sync.message.startswith("timed out after 4s waiting for health: Deployment/")
    assert actions(result)["api(ConfigMap)"] == ChangeAction.SKIPPED.value
