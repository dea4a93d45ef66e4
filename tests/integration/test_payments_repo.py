"""The payments repository our users keep for Argo CD (tests/support/payments_repo.py), against the
real kustomize v5.7.1 and a real git server: every overlay builds, the root app's render of
`argocd/` adopts 17 Applications, their project and the ApplicationSet, the set generates 17 apps
from the repository's listing, and every adopted app renders what its Argo CD definition says."""

from __future__ import annotations

import asyncio
import posixpath
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from agent.argocd import Generated, GitTree, NeedsTrees, generate, parse_definitions
from agent.config import AppSpec, DirectorySpec
from tests.integration.render_support import RenderRig, kustomize_build, make_rig
from tests.support.gitserver import GitServer, WorkTree
from tests.support.payments_repo import OVERLAYS, PROJECT, SERVICES, TENANT_NAMESPACE, payments_repo

REPLICAS = {"dev": 1, "staging": 2, "production": 3, "tenant-std-001": 2}


def by_kind(objects: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for obj in objects:
        found.setdefault(obj["kind"], []).append(obj)
    return found


def test_every_overlay_builds_with_kustomize(tmp_path: Path) -> None:
    for relative, text in payments_repo().items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    overlays = [(service, overlay) for service in SERVICES for overlay in OVERLAYS]
    with ThreadPoolExecutor(max_workers=2) as pool:
        builds = list(pool.map(lambda pair: kustomize_build(tmp_path / "apps" / pair[0] / "overlays" / pair[1]),
                               overlays))
    assert len(builds) == 68
    for (service, overlay), objects in zip(overlays, builds, strict=True):
        kinds = by_kind(objects)
        assert sorted(kinds) == ["ConfigMap", "Deployment", "Service"], (service, overlay)
        (deployment,) = kinds["Deployment"]
        assert deployment["spec"]["replicas"] == REPLICAS[overlay]
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["image"] == f"registry.example.com/payments/{service}:1.0.0"
        generated_env = next(cm["metadata"]["name"] for cm in kinds["ConfigMap"]
                             if cm["metadata"]["name"].startswith(f"{service}-env-"))
        assert {"configMapRef": {"name": generated_env}} in container["envFrom"]  # the hashed name is referenced
        settings = next(cm for cm in kinds["ConfigMap"] if cm["metadata"]["name"] == f"{service}-config")
        assert ("TENANT_ID" in settings["data"]) is (overlay == "tenant-std-001")


async def root_render(rig: RenderRig, sha: str) -> list[Any]:
    root = AppSpec(name="payments-root", repo=rig.url, revision="main", path="argocd",
                   directory=DirectorySpec(recurse=True))
    return await rig.renderer.render(root, await rig.revision(sha))


async def test_the_root_app_adopts_every_definition_and_they_render(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.url(repo.name)
    sha = repo.commit_and_push(payments_repo(url), "payments engine gitops")
    rig = make_rig(repo, git_server, tmp_path)
    found = parse_definitions(await root_render(rig, sha), parent="payments-root")
    assert (found.errors, found.refused, found.complete) == ((), (), True)
    assert sorted(app.name for app in found.apps) == sorted(SERVICES)
    assert [project.name for project in found.projects] == [PROJECT]
    (appset,) = found.sets
    assert all(app.project == PROJECT and app.parent == "payments-root" and app.prune_on_delete
               for app in found.apps)

    # The set asks for the repository's listing; the agent's own export of the tree answers it.
    needs = generate(appset, {})
    assert isinstance(needs, NeedsTrees)
    (request,) = needs.requests
    assert (request.repo, request.revision) == (url, "main")
    exported = await rig.source.export(url, await rig.revision(sha), "")
    outcome = generate(appset, {(url, "main"): GitTree(files=tuple(exported.files))})
    assert isinstance(outcome, Generated) and outcome.refused == ()
    assert sorted(app.name for app in outcome.apps) == sorted(f"{service}-std-001" for service in SERVICES)
    assert {app.namespace for app in outcome.apps} == {TENANT_NAMESPACE}

    renders = await asyncio.gather(*(render(rig, app, sha) for app in (*found.apps, *outcome.apps)))
    for app, objects in zip((*found.apps, *outcome.apps), renders, strict=True):
        service = posixpath.normpath(app.path).split("/")[1]
        deployment = by_kind(objects)["Deployment"][0]
        labels = deployment["metadata"]["labels"]
        if app in found.apps:
            assert deployment["metadata"]["name"] == f"prod-{service}"
            assert (labels["environment"], labels["team"]) == ("production", "payments")
        else:
            assert deployment["metadata"]["name"] == service
            assert (labels["tenant"], labels["team"]) == ("std-001", "payments")


async def render(rig: RenderRig, app: AppSpec, sha: str) -> list[dict[str, Any]]:
    return [manifest.obj for manifest in await rig.renderer.render(app, await rig.revision(sha))]
