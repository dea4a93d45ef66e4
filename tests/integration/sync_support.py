"""The real controller and reconciler for one app, driven one reconcile at a time (sync engine tests)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import AppSpec
from agent.controller import Controller
from agent.controller.fleet import FleetReconciler
from agent.controller.reconcile import ReconcileResult
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.model import IN_CLUSTER, IgnoreDifference, ObjectRef, OperationRequest, SyncPolicy
from agent.runtime import build_controller
from tests.integration.helpers import eventually, settings_for
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree


class Harness:
    """The real controller and reconciler for one app, driven one reconcile at a time."""

    def __init__(self, controller: Controller, kube: KubeClient, name: str, namespace: str) -> None:
        self.controller, self.kube, self.name, self.namespace = controller, kube, name, namespace

    async def reconcile(self, request: OperationRequest | None = None) -> ReconcileResult:
        self.controller.request_refresh(self.name)  # ask git again, as a refresh does
        result = await self.controller.reconcile_once(self.name, request)
        assert result is not None
        return result

    async def seen(self, kind: str, name: str, api_version: str, check: Callable[[Any], bool]) -> None:
        """Wait until the agent's watch cache holds the object as `check` wants: a change made outside
        reaches the agent as a watch event, which may come after the write returned."""
        fleet = self.controller.reconciler
        assert isinstance(fleet, FleetReconciler)
        watch = fleet.clusters.find(IN_CLUSTER).watch
        assert watch is not None
        group = api_version.rpartition("/")[0]
        ref = ObjectRef(group, kind, self.namespace, name)
        await eventually(lambda: (cached := watch.get(api_version, ref)) is not None and check(cached),
                         what=f"the agent to see {kind} {name} changed")

    async def live(self, kind: str, name: str, api_version: str = "v1", *, namespaced: bool = True) -> Any:
        meta = {"name": name, "namespace": self.namespace} if namespaced else {"name": name}
        return await self.kube.get({"apiVersion": api_version, "kind": kind, "metadata": meta})


MakeHarness = Callable[..., Harness]


@pytest.fixture
def make_harness(tmp_path: Path, cluster: LocalCluster, kube: KubeClient, git_server: GitServer, repo: WorkTree,
                 namespace: str) -> Any:
    def make(policy: SyncPolicy | None = None, *, path: str = "app", app_namespace: str | None = None,
             ignore: tuple[IgnoreDifference, ...] = ()) -> Harness:
        # Labels are per app name across the cluster: each test's app gets a name of its own.
        name = f"app-{secrets.token_hex(3)}"
        spec = AppSpec(name=name, repo=git_server.url(repo.name), revision="main", path=path,
                       namespace=app_namespace or namespace, sync_policy=policy or SyncPolicy(),
                       ignore_differences=ignore)
        settings = settings_for([spec], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig)
        return Harness(build_controller(settings, kube, Metrics()), kube, name, namespace)

    return make


def actions(result: ReconcileResult) -> dict[str, str]:
    assert result.sync is not None, result.decision
    return {str(c.ref).rsplit("/", 1)[-1] + f"({c.ref.kind})": c.action.value for c in result.sync.changes.entries}


def annotated(doc: str, **annotations: str) -> str:
    obj = yaml.safe_load(doc)
    obj["metadata"]["annotations"] = annotations
    return yaml.safe_dump(obj)


