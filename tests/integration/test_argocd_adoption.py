"""An app of apps run by the agent process: Applications adopted from Git (nested too), refused ones
shown Unknown with nothing applied, a name TOML holds left to TOML, Applications removed from Git
with and without the resources finalizer, ApplicationSets that keep their apps on doubt, and a
restart that brings every child back, with its history, before anything is rendered."""

from __future__ import annotations

import secrets
from typing import Any

from agent import APP_LABEL
from agent.errors import KubeNotFound
from agent.kube import KubeClient
from tests.integration.argocd_support import application, root_toml, settled_ok
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree


def app_set(name: str, repo: str, *, tag: str, namespace: str, directories: str = "tenants/*",
            sync: str = "sync") -> str:
    return f"""\
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: {name}
spec:
  generators:
    - git:
        repoURL: {repo}
        revision: main
        directories:
          - path: '{directories}'
  syncPolicy:
    applicationsSync: {sync}
  template:
    metadata:
      name: '{{{{path.basename}}}}-{tag}'
    spec:
      project: default
      source:
        repoURL: {repo}
        targetRevision: main
        path: '{{{{path}}}}'
      destination:
        name: in-cluster
        namespace: {namespace}
      syncPolicy:
        automated:
          prune: true
"""


def workloads(*names: str) -> dict[str, str]:
    """One ConfigMap per directory: apps/<name>/cm.yaml, or tenants/<name> for names starting with t."""
    return {f"{'tenants' if name.startswith('t') else 'apps'}/{name}/cm.yaml": configmap(f"{name}-config",
                                                                                       {"app": name})
            for name in names}


async def green(agent: AgentProcess, *names: str) -> dict[str, dict[str, Any]] | None:
    apps = await agent.applications()
    return apps if all(settled_ok(apps.get(name)) for name in names) else None


async def live_configmap(kube: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = await kube.request("GET", f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    except KubeNotFound:
        return None
    return found


async def test_an_app_of_apps_adopts_refuses_and_removes(start_agent: StartAgent, git_server: GitServer,
                                                         repo: WorkTree, namespace: str, kube: KubeClient) -> None:
    tag, url = secrets.token_hex(3), git_server.url(repo.name)
    root, dup = f"root-{tag}", f"dup-{tag}"
    a, b, helm, nested, leaf, ghost, edge = (f"{name}-{tag}" for name in ("a", "b", "helm", "nested", "leaf",
                                                                            "ghost", "edge"))
    files = {
        **workloads("a", "b", "dup", "leaf", "ghost"),
        "argocd/a.yaml": application(a, url, path="apps/a", namespace=namespace),
        "argocd/b.yaml": application(b, url, path="apps/b", namespace=namespace, finalizer=False),
        "argocd/helm.yaml": application(helm, url, path="apps/a", namespace=namespace,
                                        extra_source="    helm:\n      valueFiles: [values.yaml]\n"),
        "argocd/dup.yaml": application(dup, url, path="apps/b", namespace=namespace),
        "argocd/nested.yaml": application(nested, url, path="nested", namespace=namespace),
        "nested/leaf.yaml": application(leaf, url, path="apps/leaf", namespace=namespace),
        "argocd/ghost.yaml": application(ghost, url, path="apps/ghost", namespace=namespace, project=f"ghost-{tag}"),
        "argocd/edge.yaml": application(edge, url, path="apps/b", namespace=namespace).replace(
            "server: https://kubernetes.default.svc", "name: edge"),
    }
    repo.commit_and_push(files, "an app of apps")
    config = root_toml(root, url) + application_toml(dup, url, namespace=namespace, path="apps/dup",
                                                     revision="main")
    agent = await start_agent(config, poll_interval="2s")
    await agent.wait_up()
    apps = await eventually(lambda: green(agent, a, b, dup, nested, leaf), within=90, what="every child green")

    assert (apps[leaf]["parent"], apps[nested]["parent"], apps[a]["parent"], apps[dup]["parent"]) == (
        nested, root, root, None)
    refused = apps[helm]
    assert refused["sync_status"] == "Unknown" and refused["parent"] == root
    assert "argocd/helm.yaml: Application " + helm + ": spec.source.helm (Helm) is not supported" in \
        refused["conditions"][0]["message"]
    labelled = await kube.request("GET", f"/api/v1/namespaces/{namespace}/configmaps",
                                  query={"labelSelector": f"{APP_LABEL}={helm}"})
    assert labelled["items"] == [], "nothing of a refused Application is applied"
    root_app = apps[root]
    assert root_app["sync_status"] == "OutOfSync"
    assert [c["message"] for c in root_app["conditions"]] == [
        f"application {dup} is declared twice: in {agent.config_path}: applications[1] and in argocd/dup.yaml; "
        f"the one in {agent.config_path}: applications[1] keeps running"]
    assert (await live_configmap(kube, namespace, "dup-config")) is not None, "the TOML app keeps running"
    for name, message in ((ghost, f"application {ghost} belongs to project ghost-{tag}, which does not exist"),
                          (edge, "there are no clusters with this name: edge")):
        assert (apps[name]["sync_status"], apps[name]["conditions"]) == (
            "Unknown", [{"type": "InvalidSpecError", "message": message}])
    assert await live_configmap(kube, namespace, "ghost-config") is None

    # Both Applications leave Git: the one with the finalizer takes its objects along. The project
    # the ghost app names appears, and it runs.
    project = (f"apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: ghost-{tag}\n"
               "spec:\n  sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n")
    repo.commit_and_push({"argocd/a.yaml": None, "argocd/b.yaml": None, "argocd/project.yaml": project},
                         "remove a and b, declare ghost's project")
    await eventually(lambda: green(agent, ghost), within=60, what="the app of a project declared later")

    async def removed() -> bool:
        names = await agent.applications()
        return a not in names and b not in names and await live_configmap(kube, namespace, "a-config") is None

    await eventually(removed, within=60, what="a and b removed, a's objects deleted")
    kept = await live_configmap(kube, namespace, "b-config")
    assert kept is not None and kept["metadata"]["labels"][APP_LABEL] == b, "without the finalizer, objects stay"


async def test_an_application_set_keeps_its_apps_on_doubt(start_agent: StartAgent, git_server: GitServer,
                                                          repo: WorkTree, namespace: str, kube: KubeClient) -> None:
    tag, url = secrets.token_hex(3), git_server.url(repo.name)
    root, t1, t2, tenants = f"root-{tag}", f"t1-{tag}", f"t2-{tag}", f"tenants-{tag}"
    repo.commit_and_push({**workloads("t1", "t2"),
                          "argocd/set.yaml": app_set(tenants, url, tag=tag, namespace=namespace)}, "tenants")
    agent = await start_agent(root_toml(root, url), poll_interval="2s")
    await agent.wait_up()
    await eventually(lambda: green(agent, root, t1, t2), within=60, what="the generated apps green")

    async def root_says(text: str) -> dict[str, Any] | None:
        app = await agent.app(root)
        return app if app and any(text in c["message"] for c in app["conditions"]) else None

    repo.commit_and_push({"argocd/set.yaml": app_set(tenants, url, tag=tag, namespace=namespace, sync="sometimes")},
                         "an invalid ApplicationSet")
    app = await eventually(lambda: root_says("applicationsSync"), within=30, what="the invalid set reported")
    assert app["sync_status"] == "OutOfSync"
    assert await green(agent, t1, t2), "an invalid set file keeps the apps it generated"

    repo.commit_and_push({"argocd/set.yaml": app_set(tenants, url, tag=tag, namespace=namespace,
                                                     directories="nothing/*")}, "a generator that matches nothing")
    await eventually(lambda: root_says("generated no applications"), within=30, what="the empty generation")
    assert await green(agent, t1, t2), "a generator that suddenly yields nothing keeps every app"
    for name in ("t1-config", "t2-config"):
        assert await live_configmap(kube, namespace, name) is not None


async def test_a_restart_brings_every_child_back_with_its_history(start_agent: StartAgent, git_server: GitServer,
                                                                  repo: WorkTree, namespace: str,
                                                                  kube: KubeClient) -> None:
    tag, url = secrets.token_hex(3), git_server.url(repo.name)
    root, a, t1 = f"root-{tag}", f"a-{tag}", f"t1-{tag}"
    repo.commit_and_push({**workloads("a", "t1"), "argocd/a.yaml": application(a, url, path="apps/a",
                                                                               namespace=namespace),
                          "argocd/set.yaml": app_set(f"tenants-{tag}", url, tag=tag, namespace=namespace)},
                         "an app of apps")
    config = root_toml(root, url)
    first = await start_agent(config, poll_interval="2s")
    await first.wait_up()
    await eventually(lambda: green(first, root, a, t1), within=60, what="the children green")
    before = {name: await first.app(name) for name in (a, t1)}
    uids = {name: (await live_configmap(kube, namespace, name))["metadata"]["uid"]  # type: ignore[index]
            for name in ("a-config", "t1-config")}
    assert await first.stop() == 0

    second = await start_agent(config, poll_interval="2s")
    await second.wait_up()
    listed = await second.applications()  # served as soon as it answers: before any render
    for name in (a, t1):
        assert listed[name]["parent"] == root and listed[name]["sync_status"] == "Synced"
        detail = await second.app(name)
        assert detail is not None and before[name] is not None
        assert detail["history"] == before[name]["history"] and detail["history"], "history survives"
    await eventually(lambda: green(second, root, a, t1), within=60, what="the children green again")
    for name, uid in uids.items():
        live = await live_configmap(kube, namespace, name)
        assert live is not None and live["metadata"]["uid"] == uid, "a restart never deletes a child's objects"
