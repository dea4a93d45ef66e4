"""Kustomize rendering against the real kustomize v5.7.1 and a real git server.

The payments-platform fixture is pushed to the loopback git server; what the agent
renders from git is compared, object for object and in order, with `kustomize build`
run directly on the same checkout.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import DirectorySpec, KustomizeSpec
from agent.render import parse_image
from tests.integration.render_support import (
    OVERLAYS,
    identity,
    kustomize_binary,
    kustomize_build,
    make_rig,
    platform_files,
)
from tests.support.gitserver import GitServer, WorkTree


@pytest.mark.parametrize("path", OVERLAYS)
async def test_platform_overlay_renders_exactly_as_kustomize_build(
    path: str, repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    sha = repo.commit_and_push(platform_files(), "payments platform")
    rig = make_rig(repo, git_server, tmp_path)
    started = time.monotonic()
    manifests = await rig.renderer.render(rig.app(path), await rig.revision(sha))
    elapsed = time.monotonic() - started

    expected = kustomize_build(repo.workdir / path)
    assert [m.obj for m in manifests] == expected
    assert [identity(m.obj) for m in manifests] == [identity(o) for o in expected]
    assert all(m.source == f"kustomize build {path}" for m in manifests)
    assert [m.index for m in manifests] == list(range(len(expected)))
    assert rig.renderer.kustomize_builds == 1
    assert elapsed < 5, f"render took {elapsed:.2f}s"


async def test_platform_features_reach_the_rendered_objects(repo: WorkTree, git_server: GitServer,
                                                            tmp_path: Path) -> None:
    """The overlays really exercise what the issue lists (guards the fixture against losing it)."""
    sha = repo.commit_and_push(platform_files(), "payments platform")
    rig = make_rig(repo, git_server, tmp_path)
    prod = {identity(o): o for o in await rig.render(rig.app("apps/payment-service/overlays/production"), sha)}
    staging = {identity(o): o for o in await rig.render(rig.app("apps/payment-service/overlays/staging"), sha)}

    deployment = prod["apps/v1/Deployment/payments/prod-payment-service"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert deployment["spec"]["replicas"] == 3  # replicas
    assert container["image"].startswith("registry.example.com/payments/payment-service@sha256:")  # images
    assert deployment["metadata"]["labels"]["environment"] == "production"  # commonLabels
    assert deployment["spec"]["selector"]["matchLabels"]["environment"] == "production"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"  # JSON 6902 patch from a file
    assert container["resources"]["requests"]["cpu"] == "1"  # strategic merge patch
    assert "prometheus.io/scrape" in deployment["spec"]["template"]["metadata"]["annotations"]  # component
    config = next(o for key, o in prod.items() if "/ConfigMap/payments/prod-payment-service-config-" in key)
    assert "application.properties" in config["data"] and config["data"]["LOG_LEVEL"] == "info"  # generator
    assert container["envFrom"][0]["configMapRef"]["name"] == config["metadata"]["name"]  # hash suffix wired
    staged = staging["apps/v1/Deployment/payments-staging/staging-payment-service"]
    assert staged["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "PAYMENT_PROVIDER", "value": "sandbox"}  # inline JSON 6902 patch
    ]


OVERRIDE_CASES: list[tuple[str, KustomizeSpec]] = [
    ("name_prefix", KustomizeSpec(name_prefix="eu-")),
    ("name_suffix", KustomizeSpec(name_suffix="-blue")),
    ("namespace", KustomizeSpec(namespace="payments-eu")),
    ("common_labels", KustomizeSpec(common_labels=(("cost-center", "cc-42"), ("team", "payments")))),
    ("label_without_selector", KustomizeSpec(common_labels=(("team", "payments"),), label_without_selector=True)),
    ("common_annotations", KustomizeSpec(common_annotations=(("example.com/on-call", "payments-oncall"),))),
    ("images", KustomizeSpec(images=(
        "registry.example.com/payments/payment-service=mirror.example.com/payments/payment-service:1.4.1",))),
    ("replicas", KustomizeSpec(replicas=(("payment-service", 5),))),
]


@pytest.mark.parametrize(("override", "spec"), OVERRIDE_CASES, ids=[case[0] for case in OVERRIDE_CASES])
async def test_each_override_applies_over_the_overlay(
    override: str, spec: KustomizeSpec, repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    path = "apps/payment-service/overlays/production"
    sha = repo.commit_and_push(platform_files(), "payments platform")
    rig = make_rig(repo, git_server, tmp_path)
    plain = await rig.render(rig.app(path), sha)
    overridden = await rig.render(rig.app(path, kustomize=spec), sha)
    assert len(overridden) == len(plain)
    _check_override(override, plain, overridden)
    # The checkout is never edited: the plain render afterwards is unchanged.
    assert await rig.render(rig.app(path), sha) == plain


def _deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Deployment")


def _check_override(override: str, plain: list[dict[str, Any]], objects: list[dict[str, Any]]) -> None:
    deployment = _deployment(objects)
    if override == "name_prefix":
        assert sorted(o["metadata"]["name"] for o in objects) == sorted(f"eu-{o['metadata']['name']}" for o in plain)
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["envFrom"][0]["configMapRef"]["name"].startswith("eu-prod-payment-service-config-")
    elif override == "name_suffix":
        assert deployment["metadata"]["name"] == "prod-payment-service-blue"
    elif override == "namespace":
        assert {o["metadata"]["namespace"] for o in objects} == {"payments-eu"}
    elif override == "common_labels":
        for obj in objects:
            assert {"team": "payments", "cost-center": "cc-42"}.items() <= obj["metadata"]["labels"].items()
        assert deployment["spec"]["selector"]["matchLabels"]["team"] == "payments"
        assert deployment["spec"]["template"]["metadata"]["labels"]["team"] == "payments"
    elif override == "label_without_selector":
        assert all(o["metadata"]["labels"]["team"] == "payments" for o in objects)
        assert "team" not in deployment["spec"]["selector"]["matchLabels"]
        assert "team" not in deployment["spec"]["template"]["metadata"]["labels"]
    elif override == "common_annotations":
        assert all(o["metadata"]["annotations"]["example.com/on-call"] == "payments-oncall" for o in objects)
    elif override == "images":
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "mirror.example.com/payments/payment-service:1.4.1"
    elif override == "replicas":
        assert deployment["spec"]["replicas"] == 5
        assert _deployment(plain)["spec"]["replicas"] == 3
    else:
        raise AssertionError(override)


async def test_overrides_on_a_plain_directory_keep_each_object_source(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    sha = repo.commit_and_push(platform_files(), "payments platform")
    rig = make_rig(repo, git_server, tmp_path)
    spec = KustomizeSpec(name_prefix="eu-", common_labels=(("team", "risk"),), replicas=(("fraud-detection", 4),),
                         images=("registry.example.com/fraud-detection:2.2.0",))
    app = rig.app("apps/fraud-detection/manifests", kustomize=spec)
    manifests = await rig.renderer.render(app, await rig.revision(sha))

    assert sorted((m.obj["kind"], m.obj["metadata"]["name"]) for m in manifests) == [
        ("ConfigMap", "eu-fraud-rules-card"), ("ConfigMap", "eu-fraud-rules-sepa"),
        ("ConfigMap", "eu-fraud-thresholds"), ("Deployment", "eu-fraud-detection"), ("Service", "eu-fraud-detection"),
    ]
    deployment = next(m for m in manifests if m.obj["kind"] == "Deployment")
    assert deployment.source == "apps/fraud-detection/manifests/deployment.yaml" and deployment.index == 0
    assert deployment.obj["spec"]["replicas"] == 4
    assert deployment.obj["spec"]["template"]["spec"]["containers"][0]["image"] == (
        "registry.example.com/fraud-detection:2.2.0")
    service = next(m for m in manifests if m.obj["kind"] == "Service")
    assert (service.source, service.index) == ("apps/fraud-detection/manifests/deployment.yaml", 1)
    assert service.obj["spec"]["selector"]["team"] == "risk"
    rules = sorted((m.obj["metadata"]["name"], m.source, m.index) for m in manifests if "rules" in m.source)
    assert rules == [("eu-fraud-rules-card", "apps/fraud-detection/manifests/rules.yaml", 0),
                     ("eu-fraud-rules-sepa", "apps/fraud-detection/manifests/rules.yaml", 0)]
    assert all("gitops-agent.io/render-source" not in (m.obj["metadata"].get("annotations") or {})
               for m in manifests)
    assert all(m.obj["metadata"]["labels"]["team"] == "risk" for m in manifests)


async def test_plain_directory_is_not_recursive_unless_asked(repo: WorkTree, git_server: GitServer,
                                                             tmp_path: Path) -> None:
    sha = repo.commit_and_push(platform_files(), "payments platform")
    rig = make_rig(repo, git_server, tmp_path)
    path = "apps/fraud-detection/manifests"
    flat = await rig.renderer.render(rig.app(path), await rig.revision(sha))
    deep = await rig.renderer.render(rig.app(path, directory=DirectorySpec(recurse=True)), await rig.revision(sha))
    narrowed = await rig.renderer.render(
        rig.app(path, directory=DirectorySpec(recurse=True, include=("{*.json,extras/*}",))), await rig.revision(sha))

    assert [(m.source.rsplit("/", 1)[1], m.obj["metadata"]["name"]) for m in flat] == [
        ("deployment.yaml", "fraud-detection"), ("deployment.yaml", "fraud-detection"),
        ("rules.yaml", "fraud-rules-card"), ("rules.yaml", "fraud-rules-sepa"), ("thresholds.json", "fraud-thresholds"),
    ]
    assert [m.source for m in deep if "extras" in m.source] == [
        "apps/fraud-detection/manifests/extras/shadow-scorer.yaml"]
    assert [m.obj["metadata"]["name"] for m in narrowed] == ["fraud-shadow-scorer", "fraud-thresholds"]
    assert rig.renderer.kustomize_builds == 0


IMAGE_ARGUMENTS = [
    "nginx=my/nginx:1.2", "nginx:1.2", "nginx@sha256:abc", "nginx=my/nginx", "nginx=my/nginx@sha256:abc",
    "nginx=localhost:5000/nginx:v1", "localhost:5000/nginx:v1", "nginx=my/nginx:1.2@sha256:abc",
    "nginx:1.2@sha256:abc", "nginx=", "a=b=c", "nginx:*", "nginx=my/nginx:*", "nginx=my/nginx:1.2:3",
    "nginx=*:v2", "nginx=:v2", "nginx=@sha256:x", "nginx:v1@sha256:a:b", "registry.example.com/team/app:2024.05",
]


@pytest.mark.parametrize("argument", IMAGE_ARGUMENTS)
def test_image_overrides_parse_as_kustomize_edit_set_image(argument: str, tmp_path: Path) -> None:
    """Argo CD applies `images` with `kustomize edit set image`; the real binary is the reference."""
    (tmp_path / "kustomization.yaml").write_text("")
    subprocess.run([str(kustomize_binary()), "edit", "set", "image", argument], cwd=tmp_path, check=True,
                   capture_output=True, timeout=30)
    written = yaml.safe_load((tmp_path / "kustomization.yaml").read_text())["images"]
    assert [parse_image(argument).as_kustomization()] == written


@pytest.mark.parametrize("argument", ["nginx", "nginx:v1/x", "registry.example.com/app"])
def test_image_overrides_kustomize_refuses_are_refused(argument: str, tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text("")
    proc = subprocess.run([str(kustomize_binary()), "edit", "set", "image", argument], cwd=tmp_path,
                          capture_output=True, timeout=30)
    assert proc.returncode != 0
    with pytest.raises(ValueError, match="changes nothing"):
        parse_image(argument)
