"""The sample apps of argoproj/argocd-example-apps that need no Helm or Jsonnet (our own fixtures of the
same shape, tests/fixtures/example-apps), declared as TOML apps of one agent process, or as Argo CD
Applications in Git that one root app adopts: every one syncs, and every one but sock-shop (its
Ingress has no controller) becomes Healthy. Then the API: hooks in the history, and a selective sync."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest

from tests.integration.argocd_support import application, root_toml
from tests.integration.helpers import eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "example-apps"
PAYMENTS = Path(__file__).resolve().parents[2] / "examples" / "gitops"
APPS = ("guestbook", "kustomize-guestbook", "pre-post-sync", "sync-waves", "sock-shop")


def fixture_files(root: Path = FIXTURES) -> dict[str, str]:
    return {str(path.relative_to(root)): path.read_text() for path in root.rglob("*.yaml")}


async def settled(agent: AgentProcess, name: str) -> dict[str, Any] | None:
    """The app once its sync succeeded and its health is what it will stay."""
    app = await agent.app(name)
    if not app or app["operation_phase"] != "Succeeded" or app["sync_status"] != "Synced":
        return None
    healthy = all(r["health_status"] == "Healthy" for r in app["resources"] if r["kind"] != "Ingress")
    return app if healthy else None


def declared(declared_as: str, names: dict[str, str], url: str, namespace: str) -> tuple[dict[str, str], str]:
    """(files to add to the repository, the TOML): every app in TOML, or as an Application under argocd/
    that one TOML root app adopts."""
    if declared_as == "toml":
        return {}, "".join(application_toml(names[app], url, namespace=namespace, path=app, revision="main",
                                            sync_policy={"prune": "true"}) for app in APPS)
    files = {f"argocd/{app}.yaml": application(names[app], url, path=app, namespace=namespace, finalizer=False)
             for app in APPS}
    return files, root_toml(f"examples-{secrets.token_hex(3)}", url)


@pytest.mark.parametrize("declared_as", ["toml", "argocd"])
async def test_the_example_apps_sync_and_become_healthy(start_agent: StartAgent, git_server: GitServer,
                                                        repo: WorkTree, namespace: str, declared_as: str) -> None:
    tag = secrets.token_hex(3)
    names = {app: f"{app}-{tag}" for app in APPS}
    definitions, config = declared(declared_as, names, git_server.url(repo.name), namespace)
    sha = repo.commit_and_push({**fixture_files(), **definitions}, "the example apps")
    agent = await start_agent(config, poll_interval="2s")
    apps = {app: await eventually(lambda name=names[app]: settled(agent, name), within=90,
                                  what=f"{app} synced and healthy") for app in APPS}

    for app in ("guestbook", "kustomize-guestbook", "pre-post-sync", "sync-waves"):
        assert apps[app]["health_status"] == "Healthy", (app, apps[app]["resources"])
        assert apps[app]["revision"] == sha
    shop = apps["sock-shop"]
    assert len(shop["resources"]) == 29 and shop["health_status"] == "Progressing"
    (ingress,) = [r for r in shop["resources"] if r["kind"] == "Ingress"]
    assert ingress["health_status"] == "Progressing", "an Ingress nobody serves never gets an address"

    hooks = apps["pre-post-sync"]["history"][0]["hooks"]
    assert [(h["phase"], h["name"], h["status"], h["deleted"]) for h in hooks] == [
        ("PreSync", "pre-post-sync-before", "Succeeded", True), ("PostSync", "pre-post-sync-after", "Succeeded", True)]
    waves = apps["sync-waves"]["history"][0]["hooks"]
    assert [(h["phase"], h["wave"], h["status"]) for h in waves] == [
        ("PreSync", 0, "Succeeded"), ("Sync", 1, "Succeeded"), ("Sync", 3, "Succeeded")]
    assert waves[0]["name"].startswith(f"upgrade-sql-schema-{sha[:7]}-presync-")
    assert {r["name"] for r in apps["sync-waves"]["resources"]} == {"backend", "frontend"}, "hooks are no resources"

    # A selective sync through the API: only the named object, nothing else.
    status, body = await agent.post_json(f"/api/v1/applications/{names['guestbook']}/sync", {
        "resources": [{"group": "apps", "kind": "Deployment", "name": "guestbook-ui"}]})
    assert status == 200, body
    assert [(c["kind"], c["action"]) for c in body["changes"]] == [("Deployment", "unchanged")]
    status, body = await agent.post_json(f"/api/v1/applications/{names['guestbook']}/sync", {
        "resources": [{"kind": "Deployment", "name": "nope"}]})
    assert status == 400 and "Deployment/nope is not a resource of application" in body["error"]


async def test_the_payments_example_migrates_before_it_rolls_out(start_agent: StartAgent, git_server: GitServer,
                                                                repo: WorkTree, namespace: str) -> None:
    sha = repo.commit_and_push(fixture_files(PAYMENTS), "the payments example")
    name = f"payment-service-{secrets.token_hex(3)}"
    config = application_toml(name, git_server.url(repo.name), path="apps/payment-service/overlays/production",
                              namespace=namespace, revision="main")
    config += f'[applications.kustomize]\nnamespace = "{namespace}"\n'  # the overlay's own is `payments`
    agent = await start_agent(config)
    app = await eventually(lambda: settled(agent, name), within=60, what="the payment service synced and healthy")
    assert app["revision"] == sha and app["health_status"] == "Healthy"
    (hook,) = app["history"][0]["hooks"]
    assert (hook["phase"], hook["kind"], hook["name"], hook["namespace"], hook["status"], hook["deleted"]) == (
        "PreSync", "Job", "payment-service-migrate", namespace, "Succeeded", True)
    assert "payment-service-migrate" not in {r["name"] for r in app["resources"]}
