"""Careless manifests against the agent process and the real cluster."""

from __future__ import annotations

import json
import secrets
from typing import Any

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
