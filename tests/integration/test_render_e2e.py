"""End to end: an app with `[applications.kustomize]` overrides, configured in TOML, reconciled
from the real git server through real kustomize into a namespace of the real cluster."""

from __future__ import annotations

import asyncio
import tomllib
from pathlib import Path
from typing import Any

from agent import APP_LABEL
from agent.config import parse_settings
from agent.controller import Reconciler
from agent.controller.reload import source_options
from agent.engine.health import object_health
from agent.errors import RenderError
from agent.kube import KubeClient
from agent.model import AppState, HealthStatus
from agent.render import Renderer
from agent.source import GitSource
from tests.integration.helpers import eventually
from tests.integration.render_support import kustomize_binary, platform_files
from tests.support.gitserver import GitServer, WorkTree


def config(url: str, namespace: str, state: Path) -> str:
    return f"""
[agent]
state_dir = "{state}"
kustomize_path = "{kustomize_binary()}"
render_timeout = "30s"
max_concurrent_renders = 2

[[applications]]
name = "payments-staging-eu"
repo = "{url}"
revision = "main"
path = "apps/payment-service/overlays/staging"

[applications.kustomize]
namespace = "{namespace}"
name_prefix = "eu-"
common_labels = {{ team = "payments", region = "eu-west" }}
common_annotations = {{ "payments.example.com/runbook" = "https://runbooks.example.com/payments" }}
images = ["registry.example.com/payments/payment-service=registry.example.com/payments/payment-service:1.4.0"]
replicas = ["payment-service=3"]
"""


async def test_app_with_kustomize_overrides_is_reconciled_into_the_namespace(
    repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    first = repo.commit_and_push(platform_files(), "payments platform")
    settings = parse_settings(tomllib.loads(config(git_server.url(repo.name), namespace, tmp_path)))
    (app,) = settings.applications
    source = GitSource(tmp_path / "repos", options=source_options(settings.agent))
    renderer = Renderer(settings.agent.render, source)
    reconciler = Reconciler(source=source, kube=kube, renderer=renderer)

    outcome = await reconciler.reconcile(app, AppState.new(app.name))
    while outcome.result.running:  # a sync is stepped: each call advances it until it waits for health
        await asyncio.sleep(0.05)
        outcome = await reconciler.reconcile(app, outcome.state)
    result = outcome.result

    assert result.error is None, result.error
    assert result.revision is not None and result.revision.sha == first
    name = "eu-staging-payment-service"
    deployment = await kube.get({"apiVersion": "apps/v1", "kind": "Deployment",
                                 "metadata": {"name": name, "namespace": namespace}})
    assert deployment is not None, "the Deployment was not created under its overridden name and namespace"
    labels = deployment["metadata"]["labels"]
    assert labels["team"] == "payments" and labels["region"] == "eu-west" and labels["environment"] == "staging"
    assert labels[APP_LABEL] == "payments-staging-eu"
    assert deployment["metadata"]["annotations"]["payments.example.com/runbook"].startswith("https://")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["selector"]["matchLabels"]["team"] == "payments"
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example.com/payments/payment-service:1.4.0"
    config_name = container["envFrom"][0]["configMapRef"]["name"]
    assert config_name.startswith("eu-staging-payment-service-config-")
    for kind, api_version, object_name in (("ConfigMap", "v1", config_name), ("Service", "v1", name),
                                           ("ServiceAccount", "v1", name)):
        live = await kube.get({"apiVersion": api_version, "kind": kind,
                               "metadata": {"name": object_name, "namespace": namespace}})
        assert live is not None, f"{kind}/{namespace}/{object_name} missing"
        assert live["metadata"]["labels"]["team"] == "payments"
    assert {r.ref.kind for r in result.status.resources} == {"ConfigMap", "Deployment", "Service", "ServiceAccount"}

    # A commit that breaks the render: the reconcile stops with the cause, nothing is applied.
    broken = platform_files()["apps/payment-service/overlays/staging/kustomization.yaml"].replace(
        "../../base", "../../bsae")
    repo.commit_and_push({"apps/payment-service/overlays/staging/kustomization.yaml": broken,
                          "apps/payment-service/base/service.yaml": None}, "typo")
    source.invalidate(app.repo)
    # A sync of one wave does not wait for the rollout; wait here until the controller is done writing status.
    settled = await eventually(lambda: _rolled_out(kube, deployment), what="the Deployment rolled out")
    before = settled["metadata"]["resourceVersion"]

    failed = (await reconciler.reconcile(app, outcome.state)).result

    assert isinstance(failed.error, RenderError)
    assert str(failed.error).startswith("app payments-staging-eu: apps/payment-service/overlays/staging/"
                                        "kustomization.yaml: resources: '../../bsae' does not exist")
    after = await kube.get(deployment)
    assert after is not None and after["metadata"]["resourceVersion"] == before, "nothing is applied"
    service = await kube.get({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name,
                                                                                   "namespace": namespace}})
    assert service is not None, "nothing is pruned on a render error"


async def _rolled_out(kube: KubeClient, deployment: dict[str, Any]) -> dict[str, Any] | None:
    live = await kube.get(deployment)
    return live if live is not None and object_health(live).status is HealthStatus.HEALTHY else None
