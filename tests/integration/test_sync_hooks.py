"""Resource hooks on the real cluster (issue 19): PreSync before the rollout, PostSync after it, fresh
names for generateName, a failing hook that stops the sync and runs the SyncFail hooks, and PostDelete
hooks when an app is removed with prune_on_delete.

kwok completes the pods of Jobs at once; a pod annotated `local-cluster.test/outcome: Failed`
fails; a pod whose node selector no node matches stays Pending until a node gets the label.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import AppSpec
from agent.controller.reload import apply_settings
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.model import HookType, OperationPhase, SyncPolicy, SyncStatus
from agent.runtime import build_controller
from tests.integration.helpers import configmap, deployment, eventually, settings_for
from tests.integration.sync_support import MakeHarness
from tests.support.agent import StartAgent, application_toml
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree

HOOK = "argocd.argoproj.io/hook"
POLICY = "argocd.argoproj.io/hook-delete-policy"


def job(name: str, phase: str, *, policy: str = "", generate: bool = False, node_label: str = "",
        fails: str = "") -> str:
    meta: dict[str, Any] = {"generateName" if generate else "name": name, "annotations": {HOOK: phase}}
    if policy:
        meta["annotations"][POLICY] = policy
    pod: dict[str, Any] = {"restartPolicy": "Never",
                           "containers": [{"name": "main", "image": "registry.example.com/x:1"}]}
    if node_label:
        pod["nodeSelector"] = {node_label: "true"}
    template: dict[str, Any] = {"spec": pod}
    if fails:
        template["metadata"] = {"annotations": {"local-cluster.test/outcome": "Failed",
                                                "local-cluster.test/message": fails}}
    return yaml.safe_dump({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
                           "spec": {"backoffLimit": 0, "template": template}})


def hook_configmap(name: str, phase: str) -> str:
    obj = yaml.safe_load(configmap(name, {"phase": phase}))
    obj["metadata"]["annotations"] = {HOOK: phase}
    return yaml.safe_dump(obj)


async def hook_jobs(kube: KubeClient, app: str) -> list[dict[str, Any]]:
    return await kube.list_labelled("batch/v1", "Job", f"gitops-agent.io/hook-of={app}")


@pytest.fixture
async def node_label(kube: KubeClient) -> AsyncIterator[tuple[str, str]]:
    """A label no node has yet, and a node to give it to; removed afterwards."""
    label = f"example.com/hooks-{secrets.token_hex(3)}"
    nodes = (await kube.request("GET", "/api/v1/nodes", query={"labelSelector": "type=kwok"}))["items"]
    node = nodes[0]["metadata"]["name"]
    yield label, node
    await kube.request("PATCH", f"/api/v1/nodes/{node}", body={"metadata": {"labels": {label: None}}},
                       content_type="application/merge-patch+json")


async def test_pre_sync_job_runs_before_the_rollout_and_is_deleted_after_success(
        make_harness: MakeHarness, repo: WorkTree, kube: KubeClient, node_label: tuple[str, str]) -> None:
    label, node = node_label
    repo.commit_and_push({"app/api.yaml": deployment("api", image="registry.example.com/api:v1"),
                          "app/migrate.yaml": job("migrate", "PreSync", policy="HookSucceeded", node_label=label)},
                         "a migration before the rollout")
    app = make_harness()
    sync = asyncio.create_task(app.reconcile())

    def waiting() -> bool:
        state = app.controller.state(app.name)
        return state is not None and state.status.message == "waiting for completion of hook batch/Job/migrate"

    await eventually(waiting, within=20, what="the sync waiting for the PreSync hook")
    status = app.controller.status(app.name)
    assert status is not None and status.operation_phase is OperationPhase.RUNNING
    assert await app.live("Deployment", "api", "apps/v1") is None, "nothing of the Sync phase before the hook is done"
    (running,) = await hook_jobs(kube, app.name)
    assert "gitops-agent.io/app" not in running["metadata"]["labels"], "a hook is never the app's resource"

    await kube.request("PATCH", f"/api/v1/nodes/{node}", body={"metadata": {"labels": {label: "true"}}},
                       content_type="application/merge-patch+json")
    result = await asyncio.wait_for(sync, timeout=30)
    assert result.sync is not None and result.sync.phase is OperationPhase.SUCCEEDED, result.sync.message
    assert await app.live("Deployment", "api", "apps/v1") is not None
    (hook,) = result.sync.hooks
    assert (hook.phase, hook.ref.name, hook.status, hook.deleted) == (HookType.PRE_SYNC, "migrate",
                                                                     OperationPhase.SUCCEEDED, True)
    await eventually(lambda: _no_jobs(kube, app.name), what="the hook deleted after success (HookSucceeded)")
    assert {r.ref.name for r in result.status.resources} == {"api"}, "the hook is not part of the app"

    repo.commit_and_push({"app/api.yaml": deployment("api", image="registry.example.com/api:v2")}, "next version")
    again = await app.reconcile()
    assert again.sync is not None and again.sync.phase is OperationPhase.SUCCEEDED, again.sync.message
    assert [(h.ref.name, h.status) for h in again.sync.hooks] == [("migrate", OperationPhase.SUCCEEDED)]
    history = app.controller.history(app.name)
    assert history is not None and [len(entry.hooks) for entry in history] == [1, 1], "each sync ran the hook"


async def _no_jobs(kube: KubeClient, app: str) -> bool:
    return not await hook_jobs(kube, app)


async def test_a_post_sync_hook_is_present_after_the_sync_and_never_makes_the_app_out_of_sync(
        make_harness: MakeHarness, repo: WorkTree, kube: KubeClient, namespace: str) -> None:
    repo.commit_and_push({"app/settings.yaml": configmap("settings", {"k": "v"}),
                          "app/smoke.yaml": hook_configmap("smoke-test", "PostSync")}, "a smoke test after the sync")
    app = make_harness(SyncPolicy(self_heal=True, prune=True))
    result = await app.reconcile()
    assert result.sync is not None and result.sync.phase is OperationPhase.SUCCEEDED, result.sync.message
    assert [(h.phase, h.ref.name, h.status) for h in result.sync.hooks] == [
        (HookType.POST_SYNC, "smoke-test", OperationPhase.SUCCEEDED)]
    smoke = await app.live("ConfigMap", "smoke-test")
    assert smoke is not None and smoke["metadata"]["labels"] == {"gitops-agent.io/hook-of": app.name}

    path = f"/api/v1/namespaces/{namespace}/configmaps/smoke-test"
    await kube.request("PATCH", path, body={"data": {"phase": "edited"}}, content_type="application/merge-patch+json")
    after = await app.reconcile()
    assert after.sync is None and after.sync_status is SyncStatus.SYNCED, "no diff, prune or self-heal of a hook"
    assert (await app.live("ConfigMap", "smoke-test"))["data"] == {"phase": "edited"}


async def test_a_generate_name_hook_gets_a_fresh_name_each_sync(make_harness: MakeHarness, repo: WorkTree,
                                                                kube: KubeClient) -> None:
    repo.commit_and_push({"app/settings.yaml": configmap("settings", {"v": "1"}),
                          "app/upgrade.yaml": job("upgrade-schema-", "PreSync", generate=True)}, "one")
    app = make_harness()
    first = await app.reconcile()
    assert first.sync is not None and first.sync.phase is OperationPhase.SUCCEEDED, first.sync.message
    (run,) = first.sync.hooks
    assert run.ref.name.startswith(f"upgrade-schema-{first.sync.revision[:7]}-presync-")
    assert [j["metadata"]["name"] for j in await hook_jobs(kube, app.name)] == [run.ref.name]

    repo.commit_and_push({"app/settings.yaml": configmap("settings", {"v": "2"})}, "two")
    second = await app.reconcile()
    assert second.sync is not None and second.sync.phase is OperationPhase.SUCCEEDED, second.sync.message
    (fresh,) = second.sync.hooks
    assert fresh.ref.name != run.ref.name

    async def only_the_fresh_one() -> bool:  # BeforeHookCreation (the default) tidies the earlier one away
        return [j["metadata"]["name"] for j in await hook_jobs(kube, app.name)] == [fresh.ref.name]

    await eventually(only_the_fresh_one, what="only the fresh hook Job left")


async def test_a_failing_hook_stops_the_sync_and_runs_the_sync_fail_hooks(make_harness: MakeHarness,
                                                                          repo: WorkTree) -> None:
    repo.commit_and_push({
        "app/api.yaml": deployment("api"),
        "app/migrate.yaml": job("migrate", "PreSync", fails="migration 42 failed: column exists"),
        "app/cleanup.yaml": hook_configmap("sync-failed", "SyncFail"),
        "app/smoke.yaml": hook_configmap("smoke-test", "PostSync"),
    }, "a migration that fails")
    app = make_harness()
    result = await app.reconcile()
    assert result.sync is not None and result.sync.phase is OperationPhase.FAILED
    assert result.sync.message.startswith("PreSync hook Job/")
    assert "migrate failed: Job has reached the specified backoff limit" in result.sync.message
    assert await app.live("Deployment", "api", "apps/v1") is None, "nothing after the failed phase is applied"
    assert await app.live("ConfigMap", "smoke-test") is None, "no PostSync hook after a failure"
    assert await app.live("ConfigMap", "sync-failed") is not None, "the SyncFail hook ran"
    assert [(h.phase, h.status) for h in result.sync.hooks] == [
        (HookType.PRE_SYNC, OperationPhase.FAILED), (HookType.SYNC_FAIL, OperationPhase.SUCCEEDED)]
    status = app.controller.status(app.name)
    assert status is not None and status.conditions[-1].type.value == "SyncError"
    assert status.sync_status is SyncStatus.OUT_OF_SYNC


async def test_post_delete_hooks_run_when_the_app_is_removed_with_prune(
        tmp_path: Path, cluster: LocalCluster, kube: KubeClient, git_server: GitServer, repo: WorkTree,
        namespace: str) -> None:
    repo.commit_and_push({"app/settings.yaml": configmap("settings", {}),
                          "app/goodbye.yaml": job("goodbye", "PostDelete")}, "a hook for the end")
    name = f"leaving-{secrets.token_hex(3)}"
    spec = AppSpec(name=name, repo=git_server.url(repo.name), revision="main", path="app", namespace=namespace,
                   prune_on_delete=True)
    settings = settings_for([spec], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig)
    controller = build_controller(settings, kube, Metrics())
    controller.start()
    try:
        def synced() -> bool:
            state = controller.state(name)
            return state is not None and state.status.operation_phase is OperationPhase.SUCCEEDED
        await eventually(synced, what="the app synced")
        assert not await hook_jobs(kube, name), "a PostDelete hook does not run in a sync"

        summary = await apply_settings(controller, replace(settings, applications=()))
        teardown = summary.teardowns[name]
        assert [ref.name for ref in teardown.deleted] == ["settings"]
        assert [(h.phase, h.ref.name, h.status, h.deleted) for h in teardown.hooks] == [
            (HookType.POST_DELETE, "goodbye", OperationPhase.SUCCEEDED, True)]
        await eventually(lambda: _no_jobs(kube, name), what="the PostDelete hook cleaned up")
    finally:
        await controller.stop(drain_timeout=2)


async def test_a_hook_in_progress_is_shown_and_carried_on_after_a_restart_without_running_again(
        start_agent: StartAgent, kube: KubeClient, git_server: GitServer, repo: WorkTree, namespace: str,
        node_label: tuple[str, str]) -> None:
    label, node = node_label
    repo.commit_and_push({"app/api.yaml": deployment("api"), "app/migrate.yaml": job("migrate", "PreSync",
                                                                                     node_label=label)}, "one")
    name = f"restarted-{secrets.token_hex(3)}"
    body = application_toml(name, git_server.url(repo.name), namespace=namespace, path="app", revision="main")
    agent = await start_agent(body)

    async def running() -> dict[str, Any] | None:
        app = await agent.app(name)
        return app if app and app["operation"] and app["operation"]["hooks"] else None

    app = await eventually(running, within=30, what="the sync running its PreSync hook")
    assert app["operation_phase"] == "Running" and app["message"] == "waiting for completion of hook batch/Job/migrate"
    (hook,) = app["operation"]["hooks"]
    assert (hook["phase"], hook["kind"], hook["name"], hook["status"]) == ("PreSync", "Job", "migrate", "Running")
    (created,) = await hook_jobs(kube, name)
    agent.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(agent.proc.wait(), timeout=15) == 0

    await kube.request("PATCH", f"/api/v1/nodes/{node}", body={"metadata": {"labels": {label: "true"}}},
                       content_type="application/merge-patch+json")
    agent = await start_agent(body)

    async def synced() -> dict[str, Any] | None:
        app = await agent.app(name)
        return app if app and app["operation_phase"] == "Succeeded" else None

    app = await eventually(synced, within=30, what="the carried-on sync to succeed")
    (run,) = app["history"][0]["hooks"]
    assert (run["name"], run["status"]) == ("migrate", "Succeeded")
    (after,) = await hook_jobs(kube, name)
    assert after["metadata"]["uid"] == created["metadata"]["uid"], "the hook was followed, not run again"
