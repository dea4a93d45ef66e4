"""Session fixtures: the real local control plane, a real git server, one namespace per test.

Nothing here is skipped: when a component is missing the fixture fails loudly.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.kube import KubeClient
from tests.support.agent import StartAgent, agent_processes
from tests.support.cluster import LocalCluster, ensure_cluster, stop_cluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.receivers import SlackReceiver, SmtpReceiver, WebhookReceiver


@pytest.fixture(scope="session")
def cluster() -> Iterator[LocalCluster]:
    local = ensure_cluster()
    # The agent finds kustomize on PATH; use the pinned one from the cluster cache.
    os.environ["PATH"] = f"{local.bin_dir}{os.pathsep}{os.environ['PATH']}"
    yield local
    if local.started_here and not os.environ.get("GITOPS_AGENT_KEEP_CLUSTER"):
        stop_cluster()


SECOND_CLUSTER = "second"


@pytest.fixture(scope="session")
def second_cluster(cluster: LocalCluster) -> Iterator[LocalCluster]:
    """Another, independent control plane (`local-cluster up --name second`), for tests of an agent
    with several clusters. Started on first use only: it costs about 600 MB and a core for seconds."""
    local = ensure_cluster(SECOND_CLUSTER)
    yield local
    if not os.environ.get("GITOPS_AGENT_KEEP_CLUSTER"):
        stop_cluster(SECOND_CLUSTER)


@pytest.fixture(scope="session")
async def kube(cluster: LocalCluster) -> AsyncIterator[KubeClient]:
    client = await KubeClient.connect(str(cluster.kubeconfig))
    yield client
    await client.close()


def _dns_label(text: str, limit: int) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:limit].strip("-")


@pytest.fixture
async def namespace(request: pytest.FixtureRequest, kube: KubeClient) -> AsyncIterator[str]:
    """A fresh namespace for one test, deleted (without waiting) afterwards."""
    name = f"{_dns_label(request.node.name.removeprefix('test_'), 50)}-{secrets.token_hex(3)}"
    await kube.request("POST", "/api/v1/namespaces", body={"apiVersion": "v1", "kind": "Namespace",
                                                             "metadata": {"name": name}})
    yield name
    await kube.request("DELETE", f"/api/v1/namespaces/{name}")


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    server = GitServer(tmp_path_factory.mktemp("git-server"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def repo(request: pytest.FixtureRequest, git_server: GitServer, tmp_path: Path) -> WorkTree:
    """A new repository on the git server with a clone to commit into."""
    name = f"{_dns_label(request.node.name, 40)}-{secrets.token_hex(3)}"
    git_server.create_repo(name)
    return WorkTree(git_server, name, tmp_path / "worktree")


@pytest.fixture
async def start_agent(tmp_path: Path, cluster: LocalCluster) -> AsyncIterator[StartAgent]:
    """Start `gitops-agent run` processes against the local cluster; they are killed after the test."""
    async for start in agent_processes(tmp_path, cluster.kubeconfig):
        yield start


@pytest.fixture
async def slack() -> AsyncIterator[SlackReceiver]:
    """A Slack-compatible chat.postMessage receiver on loopback."""
    receiver = SlackReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    """A real SMTP server (aiosmtpd) on loopback."""
    receiver = SmtpReceiver()
    receiver.start()
    yield receiver
    receiver.stop()
