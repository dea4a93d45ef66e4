"""The agent run as the manifests' service account, configured the in-cluster way: a token from the
TokenRequest API and the CA in files, KUBERNETES_SERVICE_HOST/PORT pointing at the local API server.

Cluster-wide variant: it syncs, and keeps working when its token is rotated and the old one revoked.
Namespaced variant: an app outside its namespaces fails with the API's 403 message; the others work.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path
from typing import Any

from agent.kube import KubeClient
from tests.integration.deploy_support import (
    API_TOKENS_SECRET,
    Deployed,
    apply,
    create_namespace,
    in_cluster_files,
    render,
    request_token,
    status_with_token,
    write_token,
)
from tests.integration.helpers import configmap, deployment, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.ports import free_port


def app_config(name: str, repo_url: str, path: str, namespace: str, options: str = "") -> str:
    """`options`: the sync options, as TOML (`["CreateNamespace=true"]`)."""
    return application_toml(name, repo_url, namespace=namespace, path=path, revision="main",
                            sync_policy={"prune": "true", **({"options": options} if options else {})})


AGENT_KEYS = 'leader_election = true\n\n'


async def test_agent_as_its_service_account_syncs_and_survives_token_rotation(
    cluster: LocalCluster, kube: KubeClient, tmp_path: Path, repo: WorkTree, git_server: GitServer,
    start_agent: StartAgent, deployments: list[Deployed],
) -> None:
    deployed = render(tmp_path, rbac="rbac-cluster")
    destination = f"{deployed.namespace}-apps"  # created by the agent (CreateNamespace=true)
    deployed.extra_namespaces = [destination]
    deployments.append(deployed)
    apply(cluster, deployed, tmp_path)
    token_a = await request_token(kube, deployed, bound_secret="token-a")
    env = in_cluster_files(cluster, tmp_path / "serviceaccount", token_a)
    env["POD_NAMESPACE"] = deployed.namespace
    name = f"web-{secrets.token_hex(3)}"
    first = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"LEVEL": "1"}),
                                  "app/deploy.yaml": deployment("web")}, "first")
    agent = await start_agent(AGENT_KEYS + app_config(
        name, git_server.url(repo.name), "app", destination, '["CreateNamespace=true"]'),
        name="sa", in_cluster=True, env=env)
    await eventually(lambda: agent.synced(name, first), within=30, what="the app Synced as the service account")
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": destination}}
    assert (await kube.get(cm) or {}).get("data") == {"LEVEL": "1"}

    # Rotate: the kubelet writes a new token; the old one is revoked (its bound Secret deleted).
    token_b = await request_token(kube, deployed, bound_secret="token-b")
    write_token(tmp_path / "serviceaccount" / "token", token_b)
    await kube.request("DELETE", f"/api/v1/namespaces/{deployed.namespace}/secrets/token-a")
    probe_path = f"/api/v1/namespaces/{destination}/configmaps"

    async def revoked() -> bool:
        return await status_with_token(cluster, token_a, probe_path) == 401

    await eventually(revoked, within=15, interval=0.2, what="token A to be rejected")
    assert await status_with_token(cluster, token_b, probe_path) == 200
    second = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"LEVEL": "2"})}, "second")
    await agent.refresh(name)
    await eventually(lambda: agent.synced(name, second), within=30, what="the app Synced with the rotated token")
    assert (await kube.get(cm) or {}).get("data") == {"LEVEL": "2"}
    assert "service account token re-read" in agent.logs
    readiness = await agent.readiness()
    assert readiness is not None and readiness["checks"]["leader"]["leader"] is True
    lease = await kube.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{deployed.namespace}"
                                      "/leases/gitops-agent-leader")
    assert lease["spec"]["holderIdentity"] == readiness["checks"]["leader"]["identity"]
    assert "Traceback" not in agent.logs and agent.proc.returncode is None


async def test_namespaced_agent_fails_only_the_app_outside_its_namespaces_with_the_403_message(
    cluster: LocalCluster, kube: KubeClient, tmp_path: Path, repo: WorkTree, git_server: GitServer,
    start_agent: StartAgent, deployments: list[Deployed],
) -> None:
    tag = secrets.token_hex(3)
    tenant, outside = f"tenant-{tag}", f"outside-{tag}"
    deployed = render(tmp_path, rbac="rbac-namespaced", tenants=[tenant])
    deployed.extra_namespaces = [tenant, outside]
    deployments.append(deployed)
    await create_namespace(kube, tenant)
    await create_namespace(kube, outside)
    apply(cluster, deployed, tmp_path)
    env = in_cluster_files(cluster, tmp_path / "serviceaccount", await request_token(kube, deployed))
    env["POD_NAMESPACE"] = deployed.namespace
    inside_app, outside_app = f"inside-{tag}", f"outside-{tag}"
    first = repo.commit_and_push({"inside/a.yaml": configmap("a", {"k": "1"}), "inside/b.yaml": configmap("b", {}),
                                  "outside/c.yaml": configmap("c", {"k": "1"})}, "three config maps")
    url = git_server.url(repo.name)
    agent = await start_agent(AGENT_KEYS + app_config(inside_app, url, "inside", tenant)
                              + app_config(outside_app, url, "outside", outside),
                              name="tenant", in_cluster=True, env=env)
    await eventually(lambda: agent.synced(inside_app, first), within=30, what="the app inside its namespaces Synced")

    refused = await eventually(lambda: agent.reconciled(outside_app), within=30,
                               what="the first reconcile of the app outside")
    assert refused["sync_status"] == "Unknown"
    assert refused["conditions"][0]["type"] == "ComparisonError"
    assert (f'configmaps is forbidden: User "{deployed.user}" cannot list resource "configmaps" in API group "" '
            f'in the namespace "{outside}"') in refused["message"]
    gone = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": outside}}
    assert await kube.get(gone) is None

    # Listing namespace by namespace finds what to prune.
    second = repo.commit_and_push({"inside/b.yaml": None}, "drop b")
    await agent.refresh(inside_app)
    await eventually(lambda: agent.synced(inside_app, second), within=30, what="the prune of b")
    pruned = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b", "namespace": tenant}}
    # Deleted in the foreground: the garbage collector removes it a moment after the sync.
    await eventually(lambda: _absent(kube, pruned), within=10, what="b gone")
    assert agent.proc.returncode is None and "Traceback" not in agent.logs
    metrics = await agent.metrics()
    assert 'gitops_agent_kube_requests_total{code="403",resource_kind="ConfigMap",verb="get"}' in metrics


async def _absent(kube: KubeClient, obj: dict[str, Any]) -> bool:
    return await kube.get(obj) is None


async def test_the_shipped_config_runs_with_the_api_behind_tokens(
    cluster: LocalCluster, kube: KubeClient, tmp_path: Path, deployments: list[Deployed],
) -> None:
    """The manifests' own config.toml, as the pod would run it: its service account, its token Secret."""
    deployed = render(tmp_path, rbac="rbac-cluster")
    deployments.append(deployed)
    apply(cluster, deployed, tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "KUBECONFIG"}
    env.update(in_cluster_files(cluster, tmp_path / "serviceaccount", await request_token(kube, deployed)))
    env["POD_NAMESPACE"] = deployed.namespace
    secret = await kube.request("GET", f"/api/v1/namespaces/{deployed.namespace}/secrets/{API_TOKENS_SECRET}")
    tokens = tmp_path / "tokens" / "tokens.csv"
    tokens.parent.mkdir()
    tokens.write_bytes(base64.b64decode(secret["data"]["tokens.csv"]))
    port = free_port()
    shipped = next(o for o in deployed.objects if o["kind"] == "ConfigMap")["data"]["config.toml"]
    config = tmp_path / "config.toml"
    config.write_text(shipped.replace('"0.0.0.0:8080"', f'"0.0.0.0:{port}"')
                      .replace('"/var/lib/gitops-agent"', json.dumps(str(tmp_path / "state")))
                      .replace('"/etc/gitops-agent-tokens/tokens.csv"', json.dumps(str(tokens))))
    agent = await AgentProcess.spawn(config, port=port, log_path=tmp_path / "agent.log", env=env)
    try:
        await agent.wait_up()
        assert (await agent.get("/healthz"))[0] == 200, "the liveness probe needs no token"
        await eventually(lambda: _ready(agent), within=30, what="/readyz without a token")
        assert (await agent.get("/api/v1/applications"))[0] == 401
        bearer = {"Authorization": f"Bearer {deployed.api_token}"}
        status, body = await agent.request("GET", "/api/v1/applications", headers=bearer)
        assert status == 200 and json.loads(body) == [], "the Secret's token is the operators' way in"
        assert deployed.api_token not in agent.logs
    finally:
        await agent.kill()


async def _ready(agent: AgentProcess) -> bool:
    return (await agent.get("/readyz"))[0] == 200
