"""Two apps render the same object (Argo CD's SharedResourceWarning; ownership from issue 18), end to end
on the real cluster: the app that applied it first keeps it and the other never relabels it, both
say so, FailOnSharedResource fails the other's sync, and when the owner stops declaring it the
object passes to the app that still does instead of being pruned."""

from __future__ import annotations

import secrets
from pathlib import Path

from agent.config import AppSpec
from agent.controller import Controller
from agent.controller.reconcile import ReconcileResult
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.model import ConditionType, OperationPhase, SyncPolicy, SyncStatus
from agent.runtime import build_controller
from tests.integration.helpers import configmap, settings_for
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree


async def reconcile(controller: Controller, name: str) -> ReconcileResult:
    controller.request_refresh(name)
    result = await controller.reconcile_once(name)
    assert result is not None
    return result


def shared_warnings(controller: Controller, name: str) -> list[str]:
    status = controller.status(name)
    assert status is not None
    return [c.message for c in status.conditions if c.type is ConditionType.SHARED_RESOURCE_WARNING]


async def test_the_first_app_keeps_a_shared_object_and_hands_it_over_when_it_stops_declaring_it(
        tmp_path: Path, cluster: LocalCluster, kube: KubeClient, git_server: GitServer, repo: WorkTree,
        namespace: str) -> None:
    repo.commit_and_push({
        "first/shared.yaml": configmap("shared", {"from": "first"}), "first/own.yaml": configmap("first-own", {}),
        "second/shared.yaml": configmap("shared", {"from": "second"}), "second/own.yaml": configmap("second-own", {}),
        "strict/shared.yaml": configmap("shared", {"from": "strict"}),
    }, "three apps, one object")
    tag = secrets.token_hex(3)
    first, second, strict = f"first-{tag}", f"second-{tag}", f"strict-{tag}"
    url = git_server.url(repo.name)
    policy = SyncPolicy(prune=True, self_heal=True)
    specs = [AppSpec(name=first, repo=url, revision="main", path="first", namespace=namespace, sync_policy=policy),
             AppSpec(name=second, repo=url, revision="main", path="second", namespace=namespace, sync_policy=policy),
             AppSpec(name=strict, repo=url, revision="main", path="strict", namespace=namespace,
                     sync_policy=SyncPolicy(options=frozenset({"FailOnSharedResource=true"})))]
    controller = build_controller(settings_for(specs, state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig),
                                  kube, Metrics())
    shared_ref = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared", "namespace": namespace}}

    owned = await reconcile(controller, first)
    assert owned.sync is not None and owned.sync.phase is OperationPhase.SUCCEEDED
    uid = (await kube.get(shared_ref))["metadata"]["uid"]  # type: ignore[index]

    other = await reconcile(controller, second)
    assert other.sync is not None and other.sync.phase is OperationPhase.SUCCEEDED, other.sync.message
    skipped = next(c for c in other.sync.changes.entries if c.ref.name == "shared")
    assert skipped.message == f"ConfigMap/{namespace}/shared is owned by application '{first}', which applied it first"
    live = await kube.get(shared_ref)
    assert live is not None and live["data"] == {"from": "first"}
    assert live["metadata"]["labels"]["gitops-agent.io/app"] == first, "never relabelled by the other app"
    assert other.sync_status is SyncStatus.SYNCED, "nothing a sync could change: no sync loop"
    assert any(first in message for message in shared_warnings(controller, second))

    await reconcile(controller, first)  # the owner learns that another app declares it too
    assert shared_warnings(controller, first) == [
        f"ConfigMap/{namespace}/shared is also declared by application '{second}'"]
    again = await reconcile(controller, second)
    assert again.sync is None, "self-heal does not fight over it"

    refused = await reconcile(controller, strict)
    assert refused.sync is not None and refused.sync.phase is OperationPhase.FAILED
    assert refused.sync.message.startswith(f"Shared resource found: ConfigMap/{namespace}/shared is owned by "
                                           f"application '{first}'")

    repo.commit_and_push({"first/shared.yaml": None}, "the first app stops declaring it")
    released = await reconcile(controller, first)
    assert released.sync is None and released.sync_status is SyncStatus.SYNCED, "nothing to prune: it passes on"
    assert released.plan is not None
    (kept,) = released.plan.prune
    assert kept.blocked == f"declared by application '{second}', which takes it over"

    taken = await reconcile(controller, second)
    assert taken.sync is not None and taken.sync.phase is OperationPhase.SUCCEEDED, taken.sync.message
    live = await kube.get(shared_ref)
    assert live is not None and live["metadata"]["uid"] == uid, "handed over, never deleted"
    assert live["metadata"]["labels"]["gitops-agent.io/app"] == second and live["data"] == {"from": "second"}
    gone = await reconcile(controller, first)
    assert all(entry.ref.name != "shared" for entry in controller.state(first).inventory)  # type: ignore[union-attr]
    assert gone.sync_status is SyncStatus.SYNCED
