"""The whole agent as users run it: `gitops-agent run --config FILE` against git and the cluster."""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from pathlib import Path

import aiohttp
import yaml

from agent.kube import KubeClient
from tests.integration.helpers import configmap, deployment, eventually
from tests.support.agent import StartAgent, application_toml
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.ports import free_port


async def test_agent_syncs_git_to_the_cluster_and_reports_it(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str
) -> None:
    shop = f"shop-{secrets.token_hex(3)}"  # the app label is matched across namespaces: keep it unique
    first = repo.commit_and_push(
        {"app/config.yaml": configmap("settings", {"LOG_LEVEL": "info"}), "app/deploy.yml": deployment("api"),
         "app/README.md": "not a manifest"},
        "first version",
    )
    agent = await start_agent(
        application_toml(shop, git_server.url(repo.name), namespace=namespace, path="app", revision="main"))

    app = await eventually(lambda: agent.synced(shop, first), within=20, what="app Synced at the first commit")
    assert app["revision_message"] == "first version"
    cm_ref = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": namespace}}
    dep_ref = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": namespace}}
    for ref in (cm_ref, dep_ref):
        live = await kube.get(ref)
        assert live is not None, f"{ref['kind']} was not created"
        kind = ref["kind"]
        assert live["metadata"]["labels"]["gitops-agent.io/app"] == shop
        group = "apps" if kind == "Deployment" else ""
        assert live["metadata"]["annotations"]["gitops-agent.io/tracking-id"] == (
            f"{shop}:{group}/{kind}:{namespace}/{ref['metadata']['name']}"
        )
        managers = {m["manager"] for m in live["metadata"]["managedFields"] if m["operation"] == "Apply"}
        assert managers == {"gitops-agent"}

    second = repo.commit_and_push({"app/config.yaml": configmap("settings", {"LOG_LEVEL": "debug"})}, "more logs")
    assert await agent.post(f"/api/v1/applications/{shop}/refresh") == 202
    await eventually(lambda: agent.synced(shop, second), within=20, what="app Synced at the second commit")
    live_cm = await kube.get(cm_ref)
    assert live_cm is not None and live_cm["data"] == {"LOG_LEVEL": "debug"}

    status, metrics = await agent.get("/metrics")
    assert status == 200
    info = [line for line in metrics.splitlines() if line.startswith("gitops_agent_app_info{")]
    assert len(info) == 1, info
    assert f'name="{shop}"' in info[0] and 'sync_status="Synced"' in info[0] and f'revision="{second}"' in info[0]
    assert f'gitops_agent_reconcile_total{{name="{shop}",result="synced"}}' in metrics
    assert "gitops_agent_reconcile_duration_seconds_count " in metrics  # agent-wide, no per-app buckets
    assert (await agent.get("/healthz"))[0] == 200
    ready_status, ready_body = await agent.get("/readyz")
    assert ready_status == 200, ready_body

    started = time.monotonic()
    assert await agent.stop(grace=10) == 0
    assert time.monotonic() - started < 10
    logs = agent.logs
    assert "Traceback" not in logs
    events = [json.loads(line) for line in logs.splitlines()]
    applied = [e for e in events if e["msg"] == "applied"]
    assert {e["object"] for e in applied} >= {f"ConfigMap/{namespace}/settings", f"Deployment/{namespace}/api"}
    assert all(e["app"] == shop and e["revision"] in (first, second) for e in applied)
    assert events[-1]["msg"] == "stopped"


async def test_unreachable_repository_shows_unknown_with_the_cause_and_keeps_running(
    start_agent: StartAgent, namespace: str
) -> None:
    agent = await start_agent(
        application_toml("lost", f"http://127.0.0.1:{free_port()}/nowhere.git", namespace=namespace))
    app = await eventually(
        lambda: agent.reconciled("lost"), within=15, what="the first reconcile of the unreachable app"
    )
    assert app["sync_status"] == "Unknown"
    assert "nowhere.git" in app["message"] and "ls-remote failed" in app["message"]
    assert app["conditions"][0]["type"] == "ComparisonError"
    assert agent.proc.returncode is None, "the agent must stay up"
    assert '"msg": "reconcile failed"' in agent.logs



async def test_unreachable_cluster_shows_unknown_and_keeps_running(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, tmp_path: Path, cluster: LocalCluster
) -> None:
    repo.commit_and_push({"cm.yaml": configmap("c", {"k": "v"})}, "one")
    dead = tmp_path / "dead-kubeconfig"
    kubeconfig = yaml.safe_load(cluster.kubeconfig.read_text())
    kubeconfig["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    dead.write_text(yaml.safe_dump(kubeconfig))
    agent = await start_agent(application_toml("blind", git_server.url(repo.name)), kubeconfig=dead)
    app = await eventually(lambda: agent.reconciled("blind"), within=15, what="the first reconcile")
    assert app["sync_status"] == "Unknown"
    assert "127.0.0.1" in app["message"] and "Connect" in app["message"], app["message"]
    ready_status, ready_body = await agent.get("/readyz")
    assert ready_status == 503
    assert json.loads(ready_body)["checks"]["kube"]["ok"] is False
    assert agent.proc.returncode is None, "the agent must stay up"


async def test_invalid_config_exits_2_naming_file_table_and_key(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[agent]\nlisten = "127.0.0.1:0"\nprune = true\n')
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent", "run", "--config", str(config),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await proc.communicate()
    assert proc.returncode == 2
    assert stderr.decode().strip() == f"gitops-agent: {config}: agent.prune: unknown key"


async def test_manual_sync_and_diff_over_the_api(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str
) -> None:
    app_name = f"by-hand-{secrets.token_hex(3)}"
    sha = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"MODE": "manual"})}, "manual app")
    agent = await start_agent(application_toml(app_name, git_server.url(repo.name), namespace=namespace, path="app",
                                               sync_policy={"automated": "false"}))
    app = await eventually(lambda: agent.reconciled(app_name), within=15, what="the first comparison")
    assert (app["sync_status"], app["revision"]) == ("OutOfSync", sha)
    assert "automated sync is off" in app["message"]
    status, body = await agent.get(f"/api/v1/applications/{app_name}/diff")
    assert status == 200
    diff = json.loads(body)["diffs"][f"ConfigMap/{namespace}/settings"]
    assert "+  MODE: manual" in diff

    async with aiohttp.ClientSession() as session:
        async with session.post(agent.base_url + f"/api/v1/applications/{app_name}/sync",
                                json={"dry_run": True}) as resp:
            assert resp.status == 200
            dry = await resp.json()
        assert dry["phase"] is None and dry["plan"][0]["action"] == "create"
        assert await kube.get({"apiVersion": "v1", "kind": "ConfigMap",
                               "metadata": {"name": "settings", "namespace": namespace}}) is None
        sync_url = agent.base_url + f"/api/v1/applications/{app_name}/sync"
        async with session.post(sync_url, json={"prune": "yes"}) as resp:
            assert resp.status == 400
            assert "prune must be true or false" in (await resp.json())["error"]
        async with session.post(agent.base_url + f"/api/v1/applications/{app_name}/sync", json={}) as resp:
            assert resp.status == 200
            synced = await resp.json()
    assert synced["phase"] == "Succeeded" and synced["sync_status"] == "Synced"
    assert [c["action"] for c in synced["changes"]] == ["created"]
    listed = await agent.app(app_name)
    assert listed is not None and listed["sync_status"] == "Synced"
    status, metrics = await agent.get("/metrics")
    assert f'gitops_agent_app_sync_total{{name="{app_name}",phase="Succeeded"}} 1.0' in metrics
    assert f'gitops_agent_app_out_of_sync_since_timestamp_seconds{{name="{app_name}"}} 0.0' in metrics
