"""The payments repository as our users keep it for Argo CD, run by one TOML app: its 17 Applications,
its AppProject and the 17 apps its ApplicationSet generates are adopted and go green from a cold
start, and nothing of Argo CD (no CRD, no argoproj.io object) reaches the cluster."""

from __future__ import annotations

import contextlib
import secrets
import time

from agent.errors import KubeNotFound
from agent.kube import KubeClient
from tests.integration.argocd_support import all_green, argo_group_served, payments_files, payments_names, root_toml
from tests.integration.helpers import eventually
from tests.support.agent import StartAgent
from tests.support.gitserver import GitServer, WorkTree
from tests.support.payments_repo import PROJECT, SERVICES


async def test_the_payments_repository_runs_from_one_root_app(start_agent: StartAgent, git_server: GitServer,
                                                             repo: WorkTree, namespace: str,
                                                             kube: KubeClient) -> None:
    tag = secrets.token_hex(2)
    url = git_server.url(repo.name)
    sha = repo.commit_and_push(payments_files(url, tag=tag, namespace=namespace), "payments engine gitops")
    root = f"payments-root-{tag}"
    names = [root, *payments_names(tag)]
    agent = await start_agent(root_toml(root, url), poll_interval="30s")
    await agent.wait_up()
    try:
        apps = await eventually(lambda: all_green(agent, names), within=300, interval=0.5,
                                what="the root and its 34 apps Synced and Healthy")
        print(f"\n35 apps Synced and Healthy {time.monotonic() - agent.started:.1f}s after the agent started")
        assert len(apps) == 35
        for service in SERVICES:
            production, tenant = apps[f"{service}-{tag}"], apps[f"{service}-std-{tag}"]
            assert (production["parent"], production["project"], production["revision"]) == (root, PROJECT, sha)
            assert (tenant["parent"], tenant["dest_namespace"]) == (root, f"{namespace}-std")
        assert apps[root]["parent"] is None and apps[root]["conditions"] == []

        detail = await agent.app(root)
        assert detail is not None
        kinds = sorted({(r["group"], r["kind"]) for r in detail["resources"]})
        assert kinds == [("argoproj.io", "AppProject"), ("argoproj.io", "Application"),
                         ("argoproj.io", "ApplicationSet")]
        assert all(r["sync_status"] == "Synced" for r in detail["resources"])
        assert not await argo_group_served(kube), "no Argo CD CRD is needed or created"

        status, projects = await agent.get_json("/api/v1/projects")
        assert status == 200
        team = next(project for project in projects if project["name"] == PROJECT)
        assert team["parent"] == root and sorted(team["applications"]) == sorted(payments_names(tag))
        deployment = await kube.request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/"
                                               f"prod-payment-service")
        assert deployment["metadata"]["labels"]["gitops-agent.io/app"] == f"payment-service-{tag}"
        assert agent.logged_errors() == []
    finally:
        await agent.stop()
        with contextlib.suppress(KubeNotFound):
            await kube.request("DELETE", f"/api/v1/namespaces/{namespace}-std")
