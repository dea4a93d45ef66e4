"""Strangers on the network against the agent process: forged browser requests."""

from __future__ import annotations

import asyncio
import json
import secrets

import aiohttp
import pytest

from agent.kube import KubeClient
from agent.kube.ratelimit import TokenBucket
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent
from tests.support.cluster import LocalCluster
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


async def test_a_readyz_flood_costs_about_one_api_request_a_second(
    start_agent: StartAgent, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    agent, _ = await manual_app(start_agent, git_server, repo, namespace)
    before = version_requests((await agent.get("/metrics"))[1])
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=500)) as session:

        async def ready() -> int:
            async with session.get(agent.base_url + "/readyz") as response:
                return response.status

        statuses = await asyncio.gather(*(ready() for _ in range(1500)))
    assert set(statuses) == {200}
    spent = version_requests((await agent.get("/metrics"))[1]) - before
    assert spent < 30, f"{spent} API requests for 1500 probes"  # one per second of the flood; 1500 before


def version_requests(metrics: str) -> float:
    """GETs without a kind: /version (the readiness check) and discovery."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
               if line.startswith("gitops_agent_kube_requests_total{") and 'verb="get"' in line and 'kind=""' in line)


async def test_lease_requests_do_not_wait_for_the_token_bucket(cluster: LocalCluster) -> None:
    bucket = TokenBucket(0.01, 1)  # one request, then one every 100 s
    client = await KubeClient.connect(str(cluster.kubeconfig), limiter=bucket)
    try:
        await client.request("GET", "/version")  # the only token
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.request("GET", "/version"), timeout=0.5)
        version = await asyncio.wait_for(client.unpaced().request("GET", "/version"), timeout=10)
        assert version["gitVersion"].startswith("v1.")
    finally:
        await client.close()


async def test_a_manual_sync_may_not_name_a_pull_request_but_may_name_the_branchs_past(
    start_agent: StartAgent, git_server: GitServer, repo: WorkTree, namespace: str, kube: KubeClient
) -> None:
    first = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "0"})}, "zero")
    agent, name = await manual_app(start_agent, git_server, repo, namespace)  # main moves on: "one"
    repo.checkout_new_branch("fork")
    fork = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "pwned"})}, "a fork's change")
    repo.git("push", "--quiet", "origin", "HEAD:refs/pull/7/head")
    repo.git("push", "--quiet", "origin", ":fork")  # only the pull request's ref is left on the server
    sync = f"/api/v1/applications/{name}/sync"
    assert (await agent.request("POST", f"/api/v1/applications/{name}/refresh", body=b"{}"))[0] == 202

    for revision in ("refs/pull/7/head", fork):
        status, body = await agent.request("POST", sync, body=json.dumps({"revision": revision}).encode())
        assert status == 400, body
        assert "is neither the app's revision 'HEAD', nor in its sync history, nor reachable from 'HEAD'" in \
            json.loads(body)["error"]
    settings = {**SETTINGS, "metadata": {**SETTINGS["metadata"], "namespace": namespace}}
    assert await kube.get(settings) is None

    # An older commit of the tracked branch is fine (the cache holds one commit: it fetches the history).
    status, body = await agent.request("POST", sync, body=json.dumps({"revision": first}).encode())
    assert status == 200, body
    live = await kube.get(settings)
    assert live is not None and live["data"] == {"v": "0"}
