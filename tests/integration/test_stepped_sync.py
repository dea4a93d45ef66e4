"""A sync steps instead of blocking: waiting for a wave's health holds no reconcile slot, the API shows
the operation Running with what it waits for, and a SIGTERM mid-sync is carried on by the next start."""

from __future__ import annotations

import asyncio
import json
import secrets
import signal
from pathlib import Path
from typing import Any

import yaml

from agent.config import AppSpec
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.model import OperationPhase, SyncPolicy
from agent.runtime import build_controller
from tests.integration.helpers import configmap, eventually, settings_for
from tests.support.agent import StartAgent
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree

WAVE = "argocd.argoproj.io/sync-wave"
SLOW = 20


def stuck_deployment(name: str, node_label: str, *, wave: str = "0") -> str:
    """A Deployment that rolls out only once some node carries `node_label`."""
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "annotations": {WAVE: wave}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}, "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"nodeSelector": {node_label: "true"}, "containers": [{"name": "c", "image": "x"}]}}},
    })


def wave_one_configmap(name: str) -> str:
    later = yaml.safe_load(configmap(name, {"wave": "1"}))
    later["metadata"]["annotations"] = {WAVE: "1"}
    return yaml.safe_dump(later)


async def test_twenty_slow_rollouts_do_not_delay_an_unrelated_app(
    tmp_path: Path, cluster: LocalCluster, kube: KubeClient, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    tag = secrets.token_hex(3)
    # Two waves each: a sync waits for health only when it has more than one step (gitops-engine's rule).
    files = {f"slow/{i:02d}/deploy.yaml": stuck_deployment(f"slow-{i:02d}", f"example.com/never-{tag}")
             for i in range(SLOW)}
    files |= {f"slow/{i:02d}/after.yaml": wave_one_configmap(f"after-{i:02d}") for i in range(SLOW)}
    files["fast/cm.yaml"] = configmap("fast", {"v": "1"})
    repo.commit_and_push(files, "twenty rollouts that never finish, and a config map")
    url = git_server.url(repo.name)
    slow = [AppSpec(name=f"slow-{tag}-{i:02d}", repo=url, revision="main", path=f"slow/{i:02d}", namespace=namespace,
                    sync_policy=SyncPolicy(health_timeout=600.0)) for i in range(SLOW)]
    fast = AppSpec(name=f"fast-{tag}", repo=url, revision="main", path="fast", namespace=namespace)
    settings = settings_for([*slow, fast], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig)
    assert settings.agent.max_concurrent_reconciles == SLOW  # the default: the slow apps could fill every slot
    controller = build_controller(settings, kube, Metrics())
    controller.start()
    try:
        def all_waiting() -> bool:
            states = [controller.state(spec.name) for spec in slow]
            return all(state is not None and state.operation is not None and state.operation.waiting_since
                       for state in states)

        await eventually(all_waiting, within=60, what="every slow app waiting for its rollout")
        running = controller.status(slow[0].name)
        assert running is not None and running.operation_phase is OperationPhase.RUNNING
        assert running.message == "waiting for healthy state of apps/Deployment/slow-00"

        second = repo.commit_and_push({"fast/cm.yaml": configmap("fast", {"v": "2"})}, "a change elsewhere")
        controller.request_refresh(fast.name)

        def fast_synced() -> bool:
            status = controller.status(fast.name)
            return status is not None and status.revision is not None and status.revision.sha == second \
                and status.operation_phase is OperationPhase.SUCCEEDED
        await eventually(fast_synced, within=10, what="the unrelated app synced while twenty rollouts wait")
        live = await kube.get({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fast",
                                                                                       "namespace": namespace}})
        assert live is not None and live["data"] == {"v": "2"}
        assert all_waiting(), "the slow apps still wait: nothing gave up on them"
    finally:
        await controller.stop(drain_timeout=5.0)


async def test_sigterm_mid_sync_is_carried_on_by_the_next_start(
    start_agent: StartAgent, kube: KubeClient, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    tag = secrets.token_hex(3)
    node_label = f"example.com/ready-{tag}"
    sha = repo.commit_and_push({"app/db.yaml": stuck_deployment("db", node_label), "app/later.yaml":
                                wave_one_configmap("later")}, "a rollout, then a config map")
    name = f"stepped-{tag}"
    body = (f'[[applications]]\nname = "{name}"\nrepo = "{git_server.url(repo.name)}"\nrevision = "main"\n'
            f'path = "app"\nnamespace = "{namespace}"\n[applications.sync_policy]\nhealth_timeout = "10m"\n')
    agent = await start_agent(body)

    async def waiting() -> dict[str, Any] | None:
        app = await agent.app(name)
        return app if app and app["operation_phase"] == "Running" and "waiting for" in app["message"] else None

    app = await eventually(waiting, within=30, what="the sync waiting for the rollout")
    assert app["message"] == "waiting for healthy state of apps/Deployment/db"
    later_ref = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later", "namespace": namespace}}
    assert await kube.get(later_ref) is None
    agent.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(agent.proc.wait(), timeout=15) == 0, "the stop does not wait for the rollout"
    snapshot = json.loads((agent.config_path.parent / "state" / "state.json").read_text().partition(
        '"payload":')[2][:-2])
    assert snapshot["apps"][name]["operation"]["revision"]["sha"] == sha

    nodes = (await kube.request("GET", "/api/v1/nodes", query={"labelSelector": "type=kwok"}))["items"]
    node = nodes[0]["metadata"]["name"]
    patch = {"metadata": {"labels": {node_label: "true"}}}
    await kube.request("PATCH", f"/api/v1/nodes/{node}", body=patch, content_type="application/merge-patch+json")
    try:
        agent = await start_agent(body)

        async def synced() -> dict[str, Any] | None:
            app = await agent.app(name)
            return app if app and app["operation_phase"] == "Succeeded" and app["sync_status"] == "Synced" else None

        app = await eventually(synced, within=30, what="the carried-on sync to succeed")
        assert app["revision"] == sha and await kube.get(later_ref) is not None
        history = app["history"]
        assert len(history) == 1 and history[0]["phase"] == "Succeeded" and history[0]["trigger"] == "auto"
    finally:
        unlabel = {"metadata": {"labels": {node_label: None}}}
        await kube.request("PATCH", f"/api/v1/nodes/{node}", body=unlabel,
                           content_type="application/merge-patch+json")
