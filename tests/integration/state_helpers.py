"""The real controller over a state_dir that outlives it: `restart()` builds a new one on the same disk."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from agent.config import AppSpec, Settings
from agent.controller import Controller
from agent.controller.reconcile import ReconcileResult
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.model import OperationRequest, SyncPolicy
from agent.runtime import build_controller
from tests.integration.helpers import settings_for
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.metrics import sample_total


def count_requests(metrics: Metrics, verb: str) -> int:
    """Requests of one verb (`patch`, `delete`, `get`…) the agent sent, from its own counter."""
    return int(sample_total(metrics, "gitops_agent_kube_requests_total", verb=verb))


class StateHarness:
    """One app; each `restart()` is a new process as far as memory goes: new controller, metrics,
    Kubernetes client (with request counting) and the same state_dir."""

    def __init__(self, settings: Settings, kubeconfig: Path) -> None:
        self.settings, self.kubeconfig = settings, kubeconfig
        self.name = settings.applications[0].name
        self.controller: Controller | None = None
        self.metrics = Metrics()
        self._clients: list[KubeClient] = []

    @property
    def state_dir(self) -> Path:
        return self.settings.agent.state_dir

    async def restart(self) -> Controller:
        self.metrics = Metrics()
        kube = await KubeClient.connect(str(self.kubeconfig), observer=self.metrics.observe_kube_request)
        self._clients.append(kube)
        self.controller = build_controller(self.settings, kube, self.metrics)
        return self.controller

    async def reconcile(self, request: OperationRequest | None = None) -> ReconcileResult:
        assert self.controller is not None
        self.controller.request_refresh(self.name)  # ask git again, as a poll after the interval does
        result = await self.controller.reconcile_once(self.name, request)
        assert result is not None
        assert result.error is None, result.error
        return result

    def requests(self, verb: str) -> int:
        return count_requests(self.metrics, verb)

    async def close(self) -> None:
        for kube in self._clients:
            await kube.close()


@pytest.fixture
async def state_app(tmp_path: Path, cluster: LocalCluster, git_server: GitServer, repo: WorkTree,
                    namespace: str) -> AsyncIterator[Any]:
    harnesses: list[StateHarness] = []

    async def make(policy: SyncPolicy | None = None, **agent: Any) -> StateHarness:
        # The app label is matched across namespaces: every test's app gets a name of its own.
        spec = AppSpec(name=f"state-{secrets.token_hex(3)}", repo=git_server.url(repo.name), revision="main",
                       path="app", namespace=namespace, sync_policy=policy or SyncPolicy())
        settings = settings_for([spec], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig)
        if agent:
            settings = replace(settings, agent=replace(settings.agent, **agent))
        harness = StateHarness(settings, cluster.kubeconfig)
        harnesses.append(harness)
        await harness.restart()
        return harness

    yield make
    for harness in harnesses:
        await harness.close()
