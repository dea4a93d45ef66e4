"""Strangers on the network against the agent process: forged browser requests."""

from __future__ import annotations

import json
import secrets

from agent.kube import KubeClient
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent
from tests.support.gitserver import GitServer, WorkTree

SETTINGS = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}


async def manual_app(start_agent: StartAgent, git_server: GitServer, repo: WorkTree,
                     namespace: str) -> tuple[AgentProcess, str]:
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "one")
    name = f"manual-{secrets.token_hex(3)}"
    agent = await start_agent(f'[[applications]]\nname = "{name}"\nrepo = "{git_server.url(repo.name)}"\n'
                              f'path = "app"\nnamespace = "{namespace}"\n\n'
                              '[applications.sync_policy]\nautomated = false\n')
    await eventually(lambda: agent.reconciled(name), within=20, what="the first comparison")
    return agent, name


async def test_a_forged_cross_origin_post_syncs_nothing(
    start_agent: StartAgent, git_server: GitServer, repo: WorkTree, namespace: str, kube: KubeClient
) -> None:
    agent, name = await manual_app(start_agent, git_server, repo, namespace)
    sync = f"/api/v1/applications/{name}/sync"
    # What a page on another site can make a browser send without asking: a "simple" request.
    status, body = await agent.request("POST", sync, body=b'{"prune": true}',
                                       headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
    assert status == 403 and "cross-origin requests are refused" in json.loads(body)["error"]
    status, body = await agent.request("POST", sync, body=b'{"prune": true}', headers={"Content-Type": "text/plain"})
    assert status == 415 and "Content-Type: application/json" in json.loads(body)["error"]
    status, _ = await agent.request("POST", f"/api/v1/applications/{name}/refresh", body=b"",
                                    headers={"Content-Type": "application/x-www-form-urlencoded",
                                             "Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert await kube.get({**SETTINGS, "metadata": {**SETTINGS["metadata"], "namespace": namespace}}) is None
    app = await agent.app(name)
    assert app is not None and app["sync_status"] == "OutOfSync"

    status, body = await agent.request("POST", sync, body=b"{}", headers={"Content-Type": "application/json"})
    assert status == 200, body
    assert await kube.get({**SETTINGS, "metadata": {**SETTINGS["metadata"], "namespace": namespace}}) is not None


async def test_deeply_nested_json_is_a_400_and_the_agent_stays_up(
    start_agent: StartAgent, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    agent, name = await manual_app(start_agent, git_server, repo, namespace)
    deep = b"[" * 200_000 + b"]" * 200_000
    status, body = await agent.request("POST", f"/api/v1/applications/{name}/sync", body=deep)
    assert status == 400 and "nested deeper than 64 levels" in json.loads(body)["error"]
    status, body = await agent.request("POST", "/api/webhook", body=deep, headers={"X-GitHub-Event": "push"})
    assert status == 400 and "nested deeper than 64 levels" in json.loads(body)["error"]
    assert "Traceback" not in agent.logs and "RecursionError" not in agent.logs
    assert (await agent.get("/healthz"))[0] == 200
