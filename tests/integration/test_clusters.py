"""One agent, several clusters (issue 24), against two real control planes.

`gitops-agent run` with the local cluster as its home (`in-cluster`) and a second, independent
control plane (`local-cluster up --name second`) declared in `[[clusters]]` or by an Argo CD
cluster Secret. Each app lands on its own cluster only; drift on the second is reverted; the
second stopped makes only its apps Unknown while the home cluster's apps go on syncing
commits, and started again, its apps converge on their own. A server that accepts
connections and never answers holds no reconcile slot the home cluster's apps need.
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.kube import KubeClient
from agent.model import KubeObject
from tests.conftest import SECOND_CLUSTER
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.cluster import LocalCluster, ensure_cluster, pause_cluster
from tests.support.gitserver import GitServer, WorkTree

HOME_SERVER = "https://kubernetes.default.svc"


@pytest.fixture(scope="module")
async def second_kube(second_cluster: LocalCluster) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(str(second_cluster.kubeconfig))
    yield client
    await client.close()


@pytest.fixture
async def second_namespace(second_kube: KubeClient) -> AsyncIterator[str]:
    """A namespace name for the second cluster; the app creates it (CreateNamespace=true), the test deletes it."""
    name = f"edge-{secrets.token_hex(4)}"
    yield name
    await second_kube.request("DELETE", f"/api/v1/namespaces/{name}")


def kubeconfig_of(cluster: LocalCluster) -> dict[str, Any]:
    """The local cluster's kubeconfig (JSON): server, CA data and admin token."""
    config: dict[str, Any] = json.loads(cluster.kubeconfig.read_text())
    return config


def server_of(cluster: LocalCluster) -> str:
    return str(kubeconfig_of(cluster)["clusters"][0]["cluster"]["server"])


def cluster_toml(name: str, cluster: LocalCluster) -> str:
    return f'[[clusters]]\nname = "{name}"\nkubeconfig = "{cluster.kubeconfig}"\n\n'


def edge_app(name: str, url: str, namespace: str, cluster: str, path: str = "edge") -> str:
    """An app on another cluster: it creates its namespace there and reverts drift."""
    return application_toml(name, url, namespace=namespace, path=path, extra={"cluster": json.dumps(cluster)},
                            sync_policy={"self_heal": "true", "options": '["CreateNamespace=true"]'})


async def configmap_on(kube: KubeClient, namespace: str, name: str) -> KubeObject | None:
    return await kube.get({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"namespace": namespace, "name": name}})


def names(prefix: str) -> tuple[str, str]:
    tag = secrets.token_hex(3)  # app labels are matched across namespaces and clusters: unique per test
    return f"{prefix}-home-{tag}", f"{prefix}-edge-{tag}"


async def app_info(agent: AgentProcess) -> dict[str, dict[str, str]]:
    return {labels["name"]: labels for labels, _ in await agent.samples("gitops_agent_app_info")}


# ----------------------------------------------------------------------------- one cluster is enough


async def test_an_app_naming_an_unknown_cluster_is_unknown_and_the_others_sync(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str
) -> None:
    sha = repo.commit_and_push({"app/cm.yaml": configmap("steady", {"k": "v"})}, "one")
    url = git_server.url(repo.name)
    good, ghost = names("known")
    stray = f"stray-{secrets.token_hex(3)}"
    agent = await start_agent(
        application_toml(good, url, namespace=namespace, path="app")
        + application_toml(ghost, url, namespace=namespace, path="app", extra={"cluster": '"ghost"'})
        + application_toml(stray, url, namespace=namespace, path="app", extra={"cluster": '"https://127.0.0.1:9/"'}),
        agent_keys={"credentials_namespace": json.dumps(namespace)})  # no Secrets there: only the home cluster

    await eventually(lambda: agent.synced(good, sha), within=20, what="the app on the home cluster synced")
    lost = await eventually(lambda: agent.reconciled(ghost), within=10, what="the app on an unknown cluster")
    assert lost["sync_status"] == "Unknown"
    assert lost["conditions"] == [{"type": "InvalidSpecError",
                                   "message": "there are no clusters with this name: ghost"}]
    astray = await eventually(lambda: agent.reconciled(stray), within=10, what="the app on an unknown server")
    assert astray["conditions"][0]["message"] == "there are no clusters with this server: https://127.0.0.1:9/"
    ready = await agent.readiness()
    assert ready is not None and ready["ready"] is True, ready
    assert ready["checks"]["clusters"]["clusters"]["in-cluster"]["reachable"] is True
    info = await app_info(agent)
    assert info[good]["dest_server"] == HOME_SERVER
    assert info[stray]["dest_server"] == "https://127.0.0.1:9/"
    assert agent.proc.returncode is None


class SilentServer:
    """A TCP server that accepts connections and never says a word: a cluster that hangs."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name="silent-server", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:  # closed
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self._listener.close()
        for connection in self.accepted:
            connection.close()


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.close()


async def test_a_cluster_that_never_answers_holds_no_slot_the_others_need(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, tmp_path: Path,
    silent_server: SilentServer,
) -> None:
    first = repo.commit_and_push({"app/cm.yaml": configmap("steady", {"v": "1"})}, "one")
    url = git_server.url(repo.name)
    good, hung = names("slots")
    token = tmp_path / "token"
    token.write_text("not-checked\n")
    agent = await start_agent(
        f'[[clusters]]\nname = "silent"\nserver = "https://127.0.0.1:{silent_server.port}"\n'
        f'token_file = "{token}"\n\n'
        + application_toml(good, url, namespace=namespace, path="app")
        + application_toml(hung, url, namespace=namespace, path="app", extra={"cluster": '"silent"'}),
        agent_keys={"max_concurrent_reconciles": "1"}, poll_interval="1h")
    await eventually(lambda: agent.synced(good, first), within=20, what="the home app synced")
    await eventually(lambda: silent_server.accepted, within=10, what="a request of the hung app in flight")

    # With one slot for every app, the home app's next reconcile would wait for the hung one (10 s).
    second = repo.commit_and_push({"app/cm.yaml": configmap("steady", {"v": "2"})}, "two")
    await agent.refresh(good)
    await eventually(lambda: agent.synced(good, second), within=8, what="the home app at the next commit")
    assert not await agent.reconciled(hung), "the hung app's first reconcile is still waiting for its server"

    down = await eventually(lambda: agent.reconciled(hung), within=30, what="the hung app reported")
    assert (down["sync_status"], down["health_status"]) == ("Unknown", "Unknown")
    assert "silent" in down["message"] or f"127.0.0.1:{silent_server.port}" in down["message"], down["message"]
    ready = await agent.readiness()
    assert ready is not None and ready["ready"] is True, "a cluster that is down does not make the agent unready"
    assert ready["checks"]["clusters"]["clusters"]["silent"]["reachable"] is False


# ----------------------------------------------------------------------------- two control planes


async def test_an_app_on_each_cluster_and_drift_on_the_second_reverted(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, kube: KubeClient,
    second_cluster: LocalCluster, second_kube: KubeClient, second_namespace: str,
) -> None:
    sha = repo.commit_and_push({"home/cm.yaml": configmap("home-cm", {"where": "home"}),
                                "edge/cm.yaml": configmap("edge-cm", {"where": "edge"})}, "both")
    url = git_server.url(repo.name)
    home, edge = names("pair")
    agent = await start_agent(
        cluster_toml(SECOND_CLUSTER, second_cluster)
        + application_toml(home, url, namespace=namespace, path="home")
        + edge_app(edge, url, second_namespace, SECOND_CLUSTER), poll_interval="1h")

    for app in (home, edge):
        await eventually(lambda app=app: agent.synced(app, sha), within=30, what=f"{app} synced")
    edge_cm = await configmap_on(second_kube, second_namespace, "edge-cm")
    assert edge_cm is not None and edge_cm["data"] == {"where": "edge"}
    assert await configmap_on(kube, second_namespace, "edge-cm") is None, "nothing of the edge app at home"
    assert await configmap_on(second_kube, namespace, "home-cm") is None, "nothing of the home app on the second"
    assert await configmap_on(kube, namespace, "home-cm") is not None

    await second_kube.request("PATCH", f"/api/v1/namespaces/{second_namespace}/configmaps/edge-cm",
                              body={"data": {"where": "drifted"}}, content_type="application/merge-patch+json")

    async def reverted() -> bool:
        live = await configmap_on(second_kube, second_namespace, "edge-cm")
        return live is not None and live["data"] == {"where": "edge"}

    await eventually(reverted, within=15, what="drift on the second cluster reverted")

    server = server_of(second_cluster)
    info = await app_info(agent)
    assert (info[home]["dest_server"], info[edge]["dest_server"]) == (HOME_SERVER, server)
    detail = await agent.app(edge)
    assert detail is not None
    assert detail["destination"] == {"cluster": SECOND_CLUSTER, "server": server, "namespace": second_namespace}
    ready = await agent.readiness()
    assert ready is not None and ready["ready"] is True
    reported = ready["checks"]["clusters"]["clusters"]
    assert reported[SECOND_CLUSTER]["reachable"] is True and reported[SECOND_CLUSTER]["server"] == server
    assert reported["in-cluster"]["server"] == HOME_SERVER


async def test_a_stopped_cluster_makes_only_its_apps_unknown_and_they_converge_when_it_returns(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str,
    second_cluster: LocalCluster, second_kube: KubeClient, second_namespace: str,
) -> None:
    first = repo.commit_and_push({"home/cm.yaml": configmap("home-cm", {"v": "1"}),
                                  "edge/cm.yaml": configmap("edge-cm", {"v": "1"})}, "one")
    url = git_server.url(repo.name)
    home, edge = names("outage")
    agent = await start_agent(
        cluster_toml(SECOND_CLUSTER, second_cluster)
        + application_toml(home, url, namespace=namespace, path="home")
        + edge_app(edge, url, second_namespace, SECOND_CLUSTER), poll_interval="1h")
    for app in (home, edge):
        await eventually(lambda app=app: agent.synced(app, first), within=30, what=f"{app} synced")

    try:
        pause_cluster(SECOND_CLUSTER)

        async def edge_unknown() -> dict[str, Any] | None:
            app = await agent.app(edge)
            return app if app and app["sync_status"] == "Unknown" else None

        down = await eventually(edge_unknown, within=20, what="the second cluster's app Unknown")
        assert down["health_status"] == "Unknown"
        assert down["conditions"][0]["type"] == "ComparisonError"
        assert "unreachable" in down["message"], down["message"]
        assert await agent.synced(home, first), "the home cluster's app is unaffected"
        ready = await agent.readiness()
        assert ready is not None and ready["ready"] is True
        assert ready["checks"]["clusters"]["clusters"][SECOND_CLUSTER]["reachable"] is False

        second = repo.commit_and_push({"home/cm.yaml": configmap("home-cm", {"v": "2"}),
                                       "edge/cm.yaml": configmap("edge-cm", {"v": "2"})}, "two")
        asked = time.monotonic()
        await agent.refresh(home)
        await agent.refresh(edge)
        await eventually(lambda: agent.synced(home, second), within=15, what="the home app at the next commit")
        home_seconds = time.monotonic() - asked
        still = await agent.app(edge)
        assert still is not None and still["sync_status"] == "Unknown"
    finally:
        ensure_cluster(SECOND_CLUSTER)  # started again as it was: same address, credentials and objects
    back = time.monotonic()

    await eventually(lambda: agent.synced(edge, second), within=40, what="the second cluster's app converged")
    recovered = time.monotonic() - back
    live = await configmap_on(second_kube, second_namespace, "edge-cm")
    assert live is not None and live["data"] == {"v": "2"}
    print(f"\nhome app at the next commit {home_seconds:.2f}s after the refresh while the second cluster was down; "
          f"second cluster's app converged {recovered:.2f}s after the cluster was back")


async def test_an_argocd_cluster_secret_declares_a_cluster_and_its_removal_deletes_nothing(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str, kube: KubeClient,
    second_cluster: LocalCluster, second_kube: KubeClient, second_namespace: str,
) -> None:
    config = kubeconfig_of(second_cluster)
    server, token = server_of(second_cluster), config["users"][0]["user"]["token"]
    ca_data = config["clusters"][0]["cluster"]["certificate-authority-data"]  # base64 PEM, as Argo CD's caData
    label = {"argocd.argoproj.io/secret-type": "cluster"}
    for secret_name, data in (
        ("edge-cluster", {"name": "edge", "server": server,
                          "config": json.dumps({"bearerToken": token, "tlsClientConfig": {"caData": ca_data}})}),
        ("broken-cluster", {"name": "broken", "server": "https://127.0.0.1:9", "config": "{not json"}),
    ):
        await kube.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body={
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": secret_name, "labels": label},
            "stringData": data})
    sha = repo.commit_and_push({"edge/cm.yaml": configmap("edge-cm", {"by": "name"}),
                                "server/cm.yaml": configmap("server-cm", {"by": "server"})}, "one")
    url = git_server.url(repo.name)
    by_name, by_server = names("secret")
    agent = await start_agent(
        edge_app(by_name, url, second_namespace, "edge")
        + edge_app(by_server, url, second_namespace, server, path="server"),
        agent_keys={"credentials_namespace": json.dumps(namespace)}, poll_interval="3s")

    for app in (by_name, by_server):
        await eventually(lambda app=app: agent.synced(app, sha), within=30, what=f"{app} synced")
    assert await configmap_on(second_kube, second_namespace, "edge-cm") is not None
    assert await configmap_on(second_kube, second_namespace, "server-cm") is not None
    skipped = [event for event in agent.events if event["msg"].startswith("cluster Secret skipped")]
    assert [event["msg"] for event in skipped] == [
        f"cluster Secret skipped: Secret {namespace}/broken-cluster: config: not JSON "
        "(JSONDecodeError at Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"]
    assert token not in agent.logs

    await kube.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/edge-cluster")

    async def orphaned() -> dict[str, Any] | None:
        app = await agent.app(by_name)
        return app if app and app["sync_status"] == "Unknown" else None

    gone = await eventually(orphaned, within=20, what="the app of the removed cluster Unknown")
    assert gone["conditions"] == [{"type": "InvalidSpecError", "message": "there are no clusters with this name: edge"}]
    assert await configmap_on(second_kube, second_namespace, "edge-cm") is not None, "nothing deleted on doubt"
    assert token not in agent.logs
