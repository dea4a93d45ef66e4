"""Helpers for the deployment tests: test overlays of helm-free-manifests/, applying and deleting
them, and service-account tokens with the files and variables an in-cluster agent reads.

The manifests create cluster-scoped objects (Namespace, ClusterRole, bindings). Each test
renders them through an overlay with its own namespace and name prefix, so parallel runs
never share one, and deletes exactly what it applied.
"""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
import yaml

from agent.kube import KubeClient
from tests.support.cluster import LocalCluster

MANIFESTS = Path(__file__).resolve().parents[2] / "helm-free-manifests"
API_TOKENS_SECRET = "gitops-agent-api-tokens"  # what the manifests mount as [auth] token_file; operators create it


@dataclass
class Deployed:
    """One rendering of the manifests in the cluster: its namespace, prefix and objects."""

    namespace: str
    prefix: str
    objects: list[dict[str, Any]]
    extra_namespaces: list[str] = field(default_factory=list)
    api_token: str = ""  # the admin token in the API tokens Secret created with the manifests

    @property
    def service_account(self) -> str:
        return f"{self.prefix}gitops-agent"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def kinds(self) -> list[str]:
        return sorted(f"{o['kind']}/{o['metadata']['name']}" for o in self.objects)

    def one(self, kind: str) -> dict[str, Any]:
        return next(o for o in self.objects if o["kind"] == kind)


def render(tmp_path: Path, *, rbac: str, state: str = "state-emptydir", extra: Sequence[str] = (),
           tenants: Sequence[str] = ()) -> Deployed:
    """`kustomize build` of a test overlay over the repository's base and components."""
    tag = secrets.token_hex(3)
    namespace, prefix = f"ga-{tag}", f"t{tag}-"
    inner = tmp_path / f"overlay-{tag}" / "agent"
    inner.mkdir(parents=True)
    rel = os.path.relpath(MANIFESTS, inner)
    components = [f"{rel}/components/{name}" for name in (rbac, state, *extra) if name]
    (inner / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": [f"{rel}/base"], "components": components, "namespace": namespace, "namePrefix": prefix,
    }))
    root = inner.parent
    resources = ["agent"]
    if tenants:  # RoleBindings in other namespaces: outside the `namespace:` transformer
        bindings = [{
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": f"{prefix}gitops-agent", "namespace": tenant},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": f"{prefix}gitops-agent-namespaced"},
            "subjects": [{"kind": "ServiceAccount", "name": f"{prefix}gitops-agent", "namespace": namespace}],
        } for tenant in tenants]
        (root / "tenants.yaml").write_text(yaml.safe_dump_all(bindings))
        resources.append("tenants.yaml")
    (root / "kustomization.yaml").write_text(yaml.safe_dump({"resources": resources}))
    token = secrets.token_hex(24)
    return Deployed(namespace, prefix, [*kustomize(root), api_tokens_secret(namespace, token)], api_token=token)


def api_tokens_secret(namespace: str, token: str) -> dict[str, Any]:
    """The Secret an operator creates next to the manifests: one token of a platform admin."""
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": API_TOKENS_SECRET, "namespace": namespace},
            "stringData": {"tokens.csv": f'{token},ops-admin,1000,"platform-admins"\n'}}


def kustomize(directory: Path) -> list[dict[str, Any]]:
    import subprocess

    proc = subprocess.run(["kustomize", "build", str(directory)], capture_output=True, text=True, check=True)
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def apply(cluster: LocalCluster, deployed: Deployed, tmp_path: Path) -> None:
    """Server-side dry-run, then the real apply: the Namespace first (the rest needs it to exist)."""
    namespaces = [o for o in deployed.objects if o["kind"] == "Namespace"]
    rest = [o for o in deployed.objects if o["kind"] != "Namespace"]
    for batch, name in ((namespaces, "namespaces"), (rest, "objects")):
        path = tmp_path / f"{deployed.prefix}{name}.yaml"
        path.write_text(yaml.safe_dump_all(batch))
        cluster.kubectl("apply", "--dry-run=server", "-f", str(path))
        cluster.kubectl("apply", "-f", str(path))


@pytest.fixture
def deployments(cluster: LocalCluster, tmp_path: Path) -> Iterator[list[Deployed]]:
    """Renderings a test appends once it applied them; each is deleted after the test."""
    applied: list[Deployed] = []
    yield applied
    for deployed in applied:
        delete(cluster, deployed, tmp_path)


def delete(cluster: LocalCluster, deployed: Deployed, tmp_path: Path) -> None:
    path = tmp_path / f"{deployed.prefix}delete.yaml"
    path.write_text(yaml.safe_dump_all(deployed.objects))
    cluster.kubectl("delete", "--ignore-not-found", "--wait=false", "-f", str(path), check=False)
    for namespace in deployed.extra_namespaces:
        cluster.kubectl("delete", "namespace", namespace, "--ignore-not-found", "--wait=false", check=False)


def can_i(cluster: LocalCluster, user: str, *args: str) -> bool:
    proc = cluster.kubectl("auth", "can-i", *args, f"--as={user}", check=False)
    return proc.stdout.strip() == "yes"


async def create_namespace(kube: KubeClient, name: str) -> None:
    await kube.request("POST", "/api/v1/namespaces",
                       body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def request_token(kube: KubeClient, deployed: Deployed, *, bound_secret: str = "",
                        seconds: int = 600) -> str:
    """A token for the agent's service account from the TokenRequest API, bound to a Secret when
    given (deleting the Secret revokes the token)."""
    spec: dict[str, Any] = {"expirationSeconds": seconds}
    if bound_secret:
        secret = await kube.request("POST", f"/api/v1/namespaces/{deployed.namespace}/secrets", body={
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": bound_secret}})
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Secret", "name": bound_secret,
                                  "uid": secret["metadata"]["uid"]}
    path = f"/api/v1/namespaces/{deployed.namespace}/serviceaccounts/{deployed.service_account}/token"
    response = await kube.request("POST", path, body={"apiVersion": "authentication.k8s.io/v1",
                                                      "kind": "TokenRequest", "spec": spec})
    return str(response["status"]["token"])


def in_cluster_files(cluster: LocalCluster, directory: Path, token: str) -> dict[str, str]:
    """Token and CA files as a pod would have them, and the variables pointing at the local API server."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    server = urlsplit(config["clusters"][0]["cluster"]["server"])
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "ca.crt").write_bytes(base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]))
    write_token(directory / "token", token)
    return {"KUBERNETES_SERVICE_HOST": str(server.hostname), "KUBERNETES_SERVICE_PORT": str(server.port),
            "GITOPS_AGENT_SA_TOKEN_FILE": str(directory / "token"),
            "GITOPS_AGENT_SA_CA_FILE": str(directory / "ca.crt")}


def write_token(path: Path, token: str) -> None:
    """As the kubelet does: write aside, then rename over the old file."""
    aside = path.with_name(path.name + ".new")
    aside.write_text(token)
    os.replace(aside, path)


async def status_with_token(cluster: LocalCluster, token: str, path: str) -> int:
    """The HTTP status the API server gives `path` for this bearer token."""
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    import ssl

    context = ssl.create_default_context(
        cadata=base64.b64decode(config["clusters"][0]["cluster"]["certificate-authority-data"]).decode())
    server = config["clusters"][0]["cluster"]["server"]
    async with aiohttp.ClientSession() as session, session.get(
            server + path, headers={"Authorization": f"Bearer {token}"}, ssl=context) as response:
        return response.status
