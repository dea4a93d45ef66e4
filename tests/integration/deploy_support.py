"""Helpers for the deployment tests: test overlays of helm-free-manifests/, service-account tokens,
and agent processes run as users run them (in-cluster variables, systemd's NOTIFY_SOCKET).

The manifests create cluster-scoped objects (Namespace, ClusterRole, bindings). Each test
renders them through an overlay with its own namespace and name prefix, so parallel runs
never share one, and deletes exactly what it applied.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import socket
import sys
from collections.abc import AsyncIterator, Sequence
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Deployed:
    """One rendering of the manifests in the cluster: its namespace, prefix and objects."""

    namespace: str
    prefix: str
    objects: list[dict[str, Any]]
    extra_namespaces: list[str] = field(default_factory=list)

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
    return Deployed(namespace, prefix, kustomize(root))


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


class AgentProcess:
    def __init__(self, proc: asyncio.subprocess.Process, base_url: str, log_path: Path) -> None:
        self.proc, self.base_url, self.log_path = proc, base_url, log_path

    async def get_json(self, path: str) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.get(self.base_url + path) as resp:
            return resp.status, json.loads(await resp.text()) if resp.content_type == "application/json" else None

    async def post_json(self, path: str, body: Any = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as session, session.post(self.base_url + path,
                                                                    json={} if body is None else body) as resp:
            return resp.status, await resp.json(content_type=None)

    async def metrics(self) -> str:
        async with aiohttp.ClientSession() as session, session.get(self.base_url + "/metrics") as resp:
            return await resp.text()

    async def app(self, name: str) -> dict[str, Any] | None:
        try:
            status, body = await self.get_json(f"/api/v1/applications/{name}")
        except aiohttp.ClientConnectionError:
            return None
        return body if status == 200 else None

    async def refresh(self, name: str) -> None:
        async with aiohttp.ClientSession() as session, session.post(
                self.base_url + f"/api/v1/applications/{name}/refresh", json={}) as resp:
            assert resp.status == 202

    async def readiness(self) -> dict[str, Any] | None:
        try:
            _, body = await self.get_json("/readyz")
        except aiohttp.ClientConnectionError:
            return None
        return body if isinstance(body, dict) else None

    async def is_leader(self) -> bool | None:
        body = await self.readiness()
        return None if body is None else bool(body["checks"]["leader"]["leader"])

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.startswith("{")]

    @property
    def logs(self) -> str:
        return self.log_path.read_text()


@pytest.fixture
async def agent_processes(tmp_path: Path) -> AsyncIterator[Any]:
    """Start `gitops-agent run` processes; every one still running is killed afterwards."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(name: str, config_body: str, *, env: dict[str, str] | None = None,
                    kubeconfig: Path | None = None, drop: Sequence[str] = ()) -> AgentProcess:
        port = free_port()
        home = tmp_path / name
        home.mkdir(parents=True, exist_ok=True)
        kube_line = f'kubeconfig = "{kubeconfig}"\n' if kubeconfig else ""
        config = home / "agent.toml"
        config.write_text(f'[agent]\nlisten = "127.0.0.1:{port}"\nstate_dir = "{home / "state"}"\n{kube_line}'
                          + config_body)
        environ = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", *drop)}
        environ.update(env or {})
        log_path = home / "agent.log"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--config", str(config), "--log-format", "json",
            stdout=asyncio.subprocess.DEVNULL, stderr=log_path.open("wb"), env=environ,
        )
        procs.append(proc)
        return AgentProcess(proc, f"http://127.0.0.1:{port}", log_path)

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
