"""Rules and ownership hold at every step of a sync, not only when it was planned: a sync waits for a
rollout in wave 0 (on a node label that appears only when the test says so) while the world changes;
the next step sees the change before it writes anything.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import yaml

from agent.config import AppSpec
from agent.controller import Controller
from agent.controller.fleet import FleetReconciler
from agent.engine.desired import tracking_owner
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.model import (
    ChangeAction,
    ConditionType,
    Destination,
    ObjectRef,
    OperationPhase,
    ProjectSpec,
    ResourceKind,
    SyncPolicy,
)
from agent.policy import IN_CLUSTER_SERVER
from agent.runtime import build_controller
from tests.integration.helpers import configmap, eventually, settings_for
from tests.integration.test_stepped_sync import stuck_deployment, wave_one_configmap
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree


async def label_a_node(kube: KubeClient, label: str) -> None:
    nodes = (await kube.request("GET", "/api/v1/nodes", query={"labelSelector": "type=kwok"}))["items"]
    await kube.request("PATCH", f"/api/v1/nodes/{nodes[0]['metadata']['name']}",
                       body={"metadata": {"labels": {label: "true"}}}, content_type="application/merge-patch+json")


def waiting(controller: Controller, name: str) -> bool:
    state = controller.state(name)
    return state is not None and state.operation is not None and state.operation.waiting_since is not None


def ended(controller: Controller, name: str) -> bool:
    status = controller.status(name)
    return status is not None and status.operation_phase in (OperationPhase.SUCCEEDED, OperationPhase.FAILED)


async def test_an_object_another_app_takes_over_while_a_sync_waits_is_not_relabelled(
    tmp_path: Path, cluster: LocalCluster, kube: KubeClient, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    tag = secrets.token_hex(3)
    node_label, name, other = f"example.com/adopt-{tag}", f"adopter-{tag}", f"quicker-{tag}"
    contested = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "contested", "namespace": namespace},
                 "data": {"from": "a person"}}
    await kube.apply(contested)  # unmanaged: the plan adopts it, in wave 1
    repo.commit_and_push({"app/db.yaml": stuck_deployment("db", node_label),
                          "app/contested.yaml": wave_one_configmap("contested")}, "a rollout, then adopt")
    spec = AppSpec(name=name, repo=git_server.url(repo.name), revision="main", path="app", namespace=namespace,
                   sync_policy=SyncPolicy(health_timeout=600.0))
    controller = build_controller(settings_for([spec], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig),
                                  kube, Metrics())
    controller.start()
    try:
        await eventually(lambda: waiting(controller, name), within=30, what="the sync waiting for wave 0")
        # Meanwhile another app (of another agent) adopts the object; the cache sees it before wave 1 runs.
        taken = yaml.safe_load(configmap("contested", {"from": other}))
        tracking = f"{other}:/ConfigMap:{namespace}/contested"
        taken["metadata"].update(namespace=namespace, labels={"gitops-agent.io/app": other},
                                 annotations={"gitops-agent.io/tracking-id": tracking})
        await kube.apply(taken)
        assert isinstance(controller.reconciler, FleetReconciler)
        watch = controller.reconciler.clusters.home.watch
        assert watch is not None
        ref = ObjectRef("", "ConfigMap", namespace, "contested")
        await eventually(lambda: (seen := watch.get("v1", ref)) is not None and tracking_owner(seen) == other,
                         within=10, what="the takeover seen by the watch cache")
        await label_a_node(kube, node_label)
        await eventually(lambda: ended(controller, name), within=60, what="the sync ended")
        status = controller.status(name)
        assert status is not None
        (change,) = [c for c in status.changes.entries if c.ref == ref]
        assert change.action is ChangeAction.SKIPPED
        assert change.message == f"ConfigMap/{namespace}/contested is owned by application '{other}' since this " \
                                 "sync was planned: not applied"
        live = await kube.get(contested)
        assert live is not None and live["data"] == {"from": other}
        assert tracking_owner(live) == other and live["metadata"]["labels"]["gitops-agent.io/app"] == other
    finally:
        await controller.stop(drain_timeout=5.0)


async def test_a_rule_tightened_while_a_sync_waits_stops_it_before_its_next_step(
    tmp_path: Path, cluster: LocalCluster, kube: KubeClient, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    tag = secrets.token_hex(3)
    node_label, name, project = f"example.com/tighten-{tag}", f"tightened-{tag}", f"team-{tag}"
    url = git_server.url(repo.name)
    repo.commit_and_push({"app/db.yaml": stuck_deployment("db", node_label),
                          "app/later.yaml": wave_one_configmap("later")}, "a rollout, then a config map")
    kinds = (ResourceKind("apps", "Deployment"), ResourceKind("", "ConfigMap"))
    loose = ProjectSpec(name=project, source_repos=(url,),
                        destinations=(Destination(server=IN_CLUSTER_SERVER, namespace=namespace),),
                        namespace_resource_whitelist=kinds)
    spec = AppSpec(name=name, repo=url, revision="main", path="app", namespace=namespace, project=project,
                   sync_policy=SyncPolicy(health_timeout=600.0))
    settings = settings_for([spec], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig)
    controller = build_controller(settings, kube, Metrics())
    controller.projects.configure([loose])
    controller.start()
    try:
        await eventually(lambda: waiting(controller, name), within=30, what="the sync waiting for wave 0")
        tight = ProjectSpec(name=project, source_repos=(url,), destinations=loose.destinations,
                            namespace_resource_whitelist=kinds[:1])
        assert controller.projects.configure([tight]) == {project}
        await label_a_node(kube, node_label)
        await eventually(lambda: ended(controller, name), within=60, what="the sync ended")
        status = controller.status(name)
        assert status is not None and status.operation_phase is OperationPhase.FAILED
        message = f"ConfigMap/{namespace}/later is not permitted in project {project} (namespaceResourceWhitelist)"
        assert status.conditions[-1].type is ConditionType.SYNC_ERROR and status.conditions[-1].message == message
        later = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "later", "namespace": namespace}}
        assert await kube.get(later) is None, "applied after the rule forbade it"
    finally:
        await controller.stop(drain_timeout=5.0)
