"""Argo CD definitions as files for the integration tests, and waiting for adopted apps."""

from __future__ import annotations

from textwrap import dedent
from typing import Any

from agent.kube import KubeClient
from tests.support.agent import AgentProcess
from tests.support.payments_repo import SERVICES, TENANT_NAMESPACE, payments_repo

ROOT_APP = dedent("""\
    [[applications]]
    name = "{name}"
    repo = "{repo}"
    revision = "main"
    path = "{path}"

    [applications.directory]
    recurse = true

    [applications.sync_policy]
    automated = true
    prune = true

    """)


def root_toml(name: str, repo: str, *, path: str = "argocd") -> str:
    """The one TOML app of an app of apps: it renders `path` and adopts what it finds there."""
    return ROOT_APP.format(name=name, repo=repo, path=path)


def payments_files(url: str, *, tag: str, namespace: str) -> dict[str, str]:
    """The payments repository with names of this test: every app name ends in `tag`, the production
    apps deploy to `namespace` and the tenant apps to `namespace`-std (the project allows both)."""
    files = payments_repo(url)
    for path, text in files.items():
        if path.startswith("argocd/"):
            text = text.replace("namespace: payments\n", f"namespace: {namespace}\n")
            text = text.replace("namespace: payments-*", f"namespace: {namespace}-*")
            text = text.replace(f"namespace: {TENANT_NAMESPACE}", f"namespace: {namespace}-std")
            text = text.replace("-std-001'", f"-std-{tag}'")
            for service in SERVICES:
                text = text.replace(f"  name: {service}\n", f"  name: {service}-{tag}\n")
            files[path] = text
    return files


def payments_names(tag: str) -> list[str]:
    return [f"{service}-{tag}" for service in SERVICES] + [f"{service}-std-{tag}" for service in SERVICES]


def application(name: str, repo: str, *, path: str, namespace: str, finalizer: bool = True,
                extra_source: str = "", project: str = "default") -> str:
    """An Application that syncs automatically and prunes."""
    finalizers = "  finalizers:\n    - resources-finalizer.argocd.argoproj.io\n" if finalizer else ""
    return (f"apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\n"
            f"  namespace: argocd\n{finalizers}spec:\n  project: {project}\n"
            f"  source:\n    repoURL: {repo}\n    targetRevision: main\n    path: {path}\n{extra_source}"
            f"  destination:\n    server: https://kubernetes.default.svc\n    namespace: {namespace}\n"
            "  syncPolicy:\n    automated:\n      prune: true\n")


def settled_ok(app: dict[str, Any] | None) -> bool:
    return bool(app) and app["sync_status"] == "Synced" and app["health_status"] == "Healthy"  # type: ignore[index]


async def all_green(agent: AgentProcess, names: list[str]) -> dict[str, dict[str, Any]] | None:
    apps = await agent.applications()
    if all(settled_ok(apps.get(name)) for name in names):
        return apps
    return None


async def argo_group_served(kube: KubeClient) -> bool:
    """Whether the API server serves the argoproj.io group (an Argo CD CRD installed)."""
    groups = await kube.request("GET", "/apis")
    return any(group.get("name") == "argoproj.io" for group in groups.get("groups") or [])

