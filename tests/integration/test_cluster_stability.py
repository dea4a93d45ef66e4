"""The local cluster stays trustworthy: nodes keep their heartbeat, pods stay (or become again)
Ready, kwok's stages run Jobs to success or failure, and the agent shuts down cleanly."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
import time
from typing import Any

import yaml

from agent.kube import KubeClient
from tests.integration.helpers import deployment, eventually
from tests.support.agent import StartAgent
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree

KWOK_NODES = "/api/v1/nodes?labelSelector=type%3Dkwok"


def _condition(obj: dict[str, Any], kind: str) -> str:
    return next((c.get("status", "") for c in (obj.get("status") or {}).get("conditions") or []
                 if c.get("type") == kind), "")


async def _available(kube: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    live = await kube.get({"apiVersion": "apps/v1", "kind": "Deployment",
                           "metadata": {"name": name, "namespace": namespace}})
    if live is None:
        return None
    wanted = live["spec"]["replicas"]
    status = live.get("status") or {}
    return live if status.get("availableReplicas") == wanted and _condition(live, "Available") == "True" else None


async def test_nodes_and_pods_stay_ready_past_the_node_monitor_grace_period(
    cluster: LocalCluster, kube: KubeClient, namespace: str
) -> None:
    settings = json.loads((cluster.kubeconfig.parent / "cluster.json").read_text())
    grace, period = settings["node_monitor_grace_seconds"], settings["node_monitor_period_seconds"]
    manifest = yaml.safe_load(deployment("steady", replicas=2))
    manifest["metadata"]["namespace"] = namespace
    await kube.apply(manifest)
    await eventually(lambda: _available(kube, namespace, "steady"), within=15, what="Deployment available")

    nodes = (await kube.request("GET", KWOK_NODES))["items"]
    assert nodes, "no kwok nodes"
    leases = {lease["metadata"]["name"]: lease for lease in
              (await kube.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"))["items"]}
    for node in nodes:
        assert node["metadata"]["name"] in leases, f"node {node['metadata']['name']} has no Lease: no heartbeat"

    # Past the grace period (plus two checks of the node lifecycle controller), nothing may
    # have flapped: every node Ready at every look, the Deployment available at every look.
    deadline = time.monotonic() + grace + 2 * period + 2
    looks = 0
    while time.monotonic() < deadline:
        for node in (await kube.request("GET", KWOK_NODES))["items"]:
            assert _condition(node, "Ready") == "True", f"node {node['metadata']['name']} is not Ready"
        assert await _available(kube, namespace, "steady"), "the Deployment lost availability"
        looks += 1
        await asyncio.sleep(0.5)
    assert looks > 10
    renewed = {lease["metadata"]["name"]: lease["spec"]["renewTime"] for lease in
               (await kube.request("GET", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"))["items"]}
    assert all(renewed[name] != leases[name]["spec"]["renewTime"] for name in leases), "node Leases not renewed"


async def test_a_pod_marked_not_ready_becomes_ready_again(kube: KubeClient, namespace: str) -> None:
    """What the node lifecycle controller does to every pod of a node it believes NotReady."""
    manifest = yaml.safe_load(deployment("flap", replicas=1))
    manifest["metadata"]["namespace"] = namespace
    await kube.apply(manifest)
    await eventually(lambda: _available(kube, namespace, "flap"), within=15, what="Deployment available")
    pod = (await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods"))["items"][0]
    name = pod["metadata"]["name"]
    patch = {"status": {"conditions": [{"type": "Ready", "status": "False", "reason": "NodeNotReady"}]}}
    await kube.request("PATCH", f"/api/v1/namespaces/{namespace}/pods/{name}/status", body=patch,
                       content_type="application/strategic-merge-patch+json")

    async def ready_again() -> bool:
        current = await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods/{name}")
        return _condition(current, "Ready") == "True"

    await eventually(ready_again, within=10, what="the pod Ready again")
    await eventually(lambda: _available(kube, namespace, "flap"), within=10, what="Deployment available again")


def _job(name: str, pod_annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"annotations": pod_annotations},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "registry.example.com/x:1"}]},
        }},
    }


async def test_jobs_complete_or_fail_as_their_pods_are_told(kube: KubeClient, namespace: str) -> None:
    outcomes = {"succeeds": {}, "fails": {"local-cluster.test/outcome": "Failed",
                                          "local-cluster.test/message": "migration failed"}}
    for name, pod_annotations in outcomes.items():
        job = _job(name, pod_annotations)
        job["metadata"]["namespace"] = namespace
        await kube.apply(job)

    async def job_condition(name: str, kind: str) -> bool:
        live = await kube.request("GET", f"/apis/batch/v1/namespaces/{namespace}/jobs/{name}")
        return _condition(live, kind) == "True"

    await eventually(lambda: job_condition("succeeds", "Complete"), within=20, what="Job succeeds Complete")
    await eventually(lambda: job_condition("fails", "Failed"), within=20, what="Job fails Failed")
    pods = (await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                               query={"labelSelector": "job-name=fails"}))["items"]
    assert pods and pods[0]["status"]["phase"] == "Failed"
    assert pods[0]["status"]["message"] == "migration failed"


async def test_sigterm_after_a_sync_logs_no_warning_and_exits_zero(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str
) -> None:
    app = f"quiet-{secrets.token_hex(3)}"
    repo.commit_and_push({"app/deploy.yml": deployment("api")}, "first")
    agent = await start_agent(
        f'[[applications]]\nname = "{app}"\nrepo = "{git_server.url(repo.name)}"\nrevision = "main"\n'
        f'path = "app"\nnamespace = "{namespace}"\n'
    )

    async def healthy() -> dict[str, Any] | None:
        status = await agent.app(app)
        return status if status and status["sync_status"] == "Synced" and status["health_status"] == "Healthy" \
            else None

    await eventually(healthy, within=30, what="app Synced and Healthy")
    agent.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(agent.proc.wait(), timeout=15) == 0
    records = [json.loads(line) for line in agent.logs.splitlines() if line.startswith("{")]
    assert any(record["msg"] == "stopped" for record in records), agent.logs[-2000:]
    loud = [record for record in records if record["level"] in ("warning", "error", "critical")]
    assert not loud, loud
