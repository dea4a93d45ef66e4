"""Restart without loss (issue 8): status from the snapshot at once, nothing in sync re-applied,
history and triggers recorded, history bounded, audit events with the author."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from agent.model import HealthStatus, OperationPhase, OperationRequest, SyncPolicy, SyncStatus, SyncTrigger
from agent.state import StateStore
from tests.integration.helpers import configmap, deployment, eventually
from tests.integration.state_helpers import StateHarness
from tests.support.gitserver import GitServer, WorkTree


async def _settled(app: StateHarness) -> bool:
    """Synced, Healthy and compared without a sync (so every object has a proof of sync)."""
    result = await app.reconcile()
    return result.sync is None and result.sync_status is SyncStatus.SYNCED and \
        result.status.health_status is HealthStatus.HEALTHY


async def test_restart_serves_the_snapshot_at_once_and_makes_no_apply_calls(state_app: Any, repo: WorkTree) -> None:
    sha = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"MODE": "a"}), "app/api.yaml": deployment("api")},
                               "first")
    app: StateHarness = await state_app(SyncPolicy(prune=True, self_heal=True))
    first = await app.reconcile()
    assert first.sync is not None and first.sync.phase is OperationPhase.SUCCEEDED
    # The Deployment's controller writes its status after our apply; once it settles, a comparison proves it.
    await eventually(lambda: _settled(app), within=30, what="the app to settle Synced and Healthy")
    assert app.controller is not None
    before = app.controller.status(app.name)
    assert await app.controller.write_state()
    patches_while_running = app.requests("patch")

    restarted = await app.restart()
    await restarted.restore()
    restored = restarted.status(app.name)
    assert restored == before, "status is served from the snapshot before any reconcile"
    assert restored is not None and restored.revision is not None and restored.revision.sha == sha
    assert restarted.not_yet_reconciled() == [app.name], "/readyz still waits for a real reconcile"
    assert [e.trigger for e in restarted.history(app.name) or ()] == [SyncTrigger.AUTO]
    assert app.requests("get") == 0 and app.requests("patch") == 0

    result = await app.reconcile()
    assert result.sync is None and result.sync_status is SyncStatus.SYNCED
    assert app.requests("patch") == 0, "an app in sync is neither applied nor dry-run after a restart"
    assert app.requests("get") >= 2  # the labelled LISTs
    print(f"PATCH requests: {patches_while_running} before the restart (apply + dry-runs), 0 after it")

    # Without the snapshot the same comparison costs one dry-run PATCH per object.
    for path in app.state_dir.glob("state.json*"):
        path.unlink()
    await app.restart()
    assert (await app.reconcile()).sync is None
    assert app.requests("patch") == 2


async def test_a_changed_object_is_still_found_after_a_restart(state_app: Any, repo: WorkTree, kube: Any,
                                                             namespace: str) -> None:
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"MODE": "a"})}, "first")
    app: StateHarness = await state_app(SyncPolicy(self_heal=True))
    await app.reconcile()
    assert app.controller is not None and await app.controller.write_state()
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace}}
    live = await kube.get(ref)
    live["data"]["MODE"] = "edited by hand"
    await kube.request("PUT", f"/api/v1/namespaces/{namespace}/configmaps/settings", body=live)

    await app.restart()
    healed = await app.reconcile()
    assert healed.sync is not None and [c.action.value for c in healed.sync.changes.entries] == ["configured"]
    assert (await kube.get(ref))["data"] == {"MODE": "a"}


async def test_history_records_trigger_author_and_counts(state_app: Any, repo: WorkTree, git_server: GitServer,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    repo.commit_and_push({"app/a.yaml": configmap("a", {"v": "1"})}, "one")
    app: StateHarness = await state_app(SyncPolicy(prune=True))
    controller = app.controller
    assert controller is not None
    await app.reconcile()  # the poll: auto
    repo.write({"app/a.yaml": None, "app/b.yaml": configmap("b", {"v": "2"})})
    second = repo.commit("two: b replaces a", author="Ann Example <ann@example.com>")
    repo.push()
    assert controller.refresh_repository([git_server.url(repo.name)], "refs/heads/main") == [app.name]
    caplog.set_level(logging.INFO, logger="agent.engine.sync")
    await controller.reconcile_once(app.name)  # woken by the webhook
    await app.reconcile(OperationRequest())  # a manual sync of the same revision
    history = controller.history(app.name) or ()
    assert [e.trigger for e in history] == [SyncTrigger.MANUAL, SyncTrigger.WEBHOOK, SyncTrigger.AUTO]
    assert [e.id for e in history] == [3, 2, 1]
    webhook = history[1]
    assert (webhook.revision, webhook.author, webhook.message) == (second, "Ann Example <ann@example.com>",
                                                                   "two: b replaces a")
    assert (webhook.created, webhook.configured, webhook.pruned, webhook.failed) == (1, 0, 1, 0)
    assert webhook.phase is OperationPhase.SUCCEEDED and webhook.finished >= webhook.started
    audit = [(r.msg, r.__dict__["object"], r.__dict__["author"], r.__dict__["revision"]) for r in caplog.records
             if r.msg in ("applied", "pruned") and r.__dict__.get("app") == app.name]
    assert {(msg, obj.split("/")[-1]) for msg, obj, _, _ in audit} == {("applied", "b"), ("pruned", "a")}
    assert {(author, revision) for _, _, author, revision in audit} == {("Ann Example <ann@example.com>", second)}


async def test_history_stays_bounded_in_memory_and_on_disk(state_app: Any, repo: WorkTree) -> None:
    app: StateHarness = await state_app(history_limit=3)
    assert app.controller is not None
    for n in range(5):
        repo.commit_and_push({"app/cm.yaml": configmap("counter", {"n": str(n)})}, f"n={n}")
        assert (await app.reconcile()).sync is not None
    assert [e.id for e in app.controller.history(app.name) or ()] == [5, 4, 3]
    assert await app.controller.write_state()
    loaded = await StateStore(app.state_dir).load()
    assert [e.id for e in loaded.states[app.name].history] == [5, 4, 3]
    assert [e.message for e in loaded.states[app.name].history] == ["n=4", "n=3", "n=2"]
