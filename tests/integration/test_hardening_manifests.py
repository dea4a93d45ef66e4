"""Careless manifests against the agent process and the real cluster."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from agent import APP_LABEL, TRACKING_ANNOTATION
from agent.engine.health import HealthAssessor
from agent.engine.plan import Plan, PruneCandidate
from agent.engine.sync import SyncRunner
from agent.kube import Deleted, KubeClient, preconditions
from agent.model import (
    ChangeAction,
    ObjectRef,
    OperationPhase,
    Revision,
    SyncOperation,
    SyncPolicy,
    SyncTrigger,
)
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent
from tests.support.gitserver import GitServer, WorkTree

JSON = {"Content-Type": "application/json"}


async def status_of(agent: AgentProcess, name: str, *, sync_status: str, revision: str) -> dict[str, Any] | None:
    app = await agent.app(name)
    return app if app and app["sync_status"] == sync_status and app["revision"] == revision else None


async def test_malformed_labels_are_a_render_error_and_the_next_good_commit_syncs(
    start_agent: StartAgent, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    good = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "good")
    name = f"careless-{secrets.token_hex(3)}"
    agent = await start_agent(f'[[applications]]\nname = "{name}"\nrepo = "{git_server.url(repo.name)}"\n'
                              f'path = "app"\nnamespace = "{namespace}"\n')
    await eventually(lambda: status_of(agent, name, sync_status="Synced", revision=good), within=20,
                     what="the first good commit synced")

    bad = repo.commit_and_push({"app/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n"
                                               "  labels: [x]\ndata: {v: '2'}\n"}, "labels as a list")
    # A manual sync of the bad commit is answered (before the fix it never was).
    status, body = await agent.request("POST", f"/api/v1/applications/{name}/sync",
                                       body=json.dumps({"revision": bad}).encode(), headers=JSON)
    assert status == 409, body
    answer = json.loads(body)
    assert answer["error"] == ("app " + name + ": app/cm.yaml: document 1: ConfigMap 'settings': "
                               "metadata.labels must be a map of strings, not a list")
    app = await agent.app(name)
    assert app is not None and app["sync_status"] == "Unknown"
    assert app["conditions"] == [{"type": "ComparisonError", "message": answer["error"]}]
    assert (await agent.get("/readyz"))[0] == 200

    fixed = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "3"})}, "fixed")
    assert bad != fixed
    status, _ = await agent.request("POST", f"/api/v1/applications/{name}/refresh", body=b"{}", headers=JSON)
    assert status == 202
    app = await eventually(lambda: status_of(agent, name, sync_status="Synced", revision=fixed), within=20,
                           what="the good commit after the bad one synced")
    assert app["conditions"] == []


def marked(name: str, namespace: str, app: str, data: dict[str, str]) -> dict[str, Any]:
    """A ConfigMap that carries an app's label and tracking id, as the agent marks what it applies."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
            "metadata": {"name": name, "namespace": namespace, "labels": {APP_LABEL: app},
                         "annotations": {TRACKING_ANNOTATION: f"{app}:/ConfigMap:{namespace}/{name}"}}}


async def delete_now(kube: KubeClient, obj: dict[str, Any]) -> None:
    await kube.delete(obj, propagation="Background")
    await eventually(lambda: absent(kube, obj), within=10, what="the object gone")


async def absent(kube: KubeClient, obj: dict[str, Any]) -> bool:
    return await kube.get(obj) is None


async def test_a_delete_goes_only_to_the_object_that_was_read(kube: KubeClient, namespace: str) -> None:
    read = await kube.apply(marked("stale", namespace, "someone", {"v": "1"}))
    await delete_now(kube, read)
    recreated = await kube.apply(marked("stale", namespace, "someone", {"v": "1"}))
    assert recreated["metadata"]["uid"] != read["metadata"]["uid"]
    assert await kube.delete(read, only_if=preconditions(read)) is Deleted.CHANGED  # a new object, same name
    changed = await kube.apply(marked("stale", namespace, "someone", {"v": "2"}))
    assert await kube.delete(recreated, only_if=preconditions(recreated)) is Deleted.CHANGED  # edited since read
    assert await kube.get(changed) is not None
    assert await kube.delete(changed, propagation="Background", only_if=preconditions(changed)) is Deleted.DELETED
    await eventually(lambda: absent(kube, changed), within=10, what="the object gone")
    assert await kube.delete(changed, only_if=preconditions(changed)) is Deleted.GONE


async def test_prune_skips_an_object_recreated_since_it_was_read_and_reports_it(
    kube: KubeClient, namespace: str
) -> None:
    app = f"pruner-{secrets.token_hex(3)}"
    stale = await kube.apply(marked("recreated", namespace, app, {"v": "1"}))
    gone = await kube.apply(marked("plain-stale", namespace, app, {"v": "1"}))
    await delete_now(kube, stale)
    fresh = await kube.apply(marked("recreated", namespace, app, {"v": "someone else's"}))
    plan = Plan(objects=(), prune=tuple(PruneCandidate(ObjectRef.of(obj), obj, 0, False) for obj in (stale, gone)))
    runner = SyncRunner(kube, app, namespace, SyncPolicy(prune=True), HealthAssessor().assess,
                        read=lambda obj, written: kube.get(obj.desired))
    operation = SyncOperation(Revision("0" * 40), SyncTrigger.AUTO, prune=True, manual=False, started=time.time(),
                              plan=plan)

    result = (await runner.step(operation)).result

    assert result is not None and result.phase is OperationPhase.SUCCEEDED
    changes = {change.ref.name: change for change in result.changes.entries}
    assert changes["plain-stale"].action is ChangeAction.PRUNED
    assert changes["recreated"].action is ChangeAction.SKIPPED
    assert changes["recreated"].message.startswith("not pruned: the object changed, or was created again")
    survivor = await kube.get(fresh)
    assert survivor is not None and survivor["metadata"]["uid"] == fresh["metadata"]["uid"]
    assert survivor["data"] == {"v": "someone else's"}
