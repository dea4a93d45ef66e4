"""POST /api/webhook on the real HTTP app, controller, git server and cluster (in-process).

The poll interval is an hour: an app that reaches a new commit within seconds got
there through the webhook.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from agent.config import AppSpec
from agent.controller import Controller
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.model import RepoSpec
from agent.runtime import build_controller
from agent.server import build_app, serve
from agent.server.webhook import WebhookReceiver
from tests.integration.helpers import configmap, eventually, settings_for
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.ports import free_port

SECRET = "webhook-secret-9b2c"


@dataclass
class Hooked:
    controller: Controller
    metrics: Metrics
    base_url: str
    repo_url: str
    app: str

    async def post(self, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.post(
            self.base_url + "/api/webhook", data=body, headers=headers
        ) as resp:
            return resp.status, await resp.json()

    def revision(self) -> str | None:
        status = self.controller.status(self.app)
        return status.revision.sha if status and status.revision else None

    def webhook_count(self, provider: str, result: str) -> float:
        return self.metrics.registry.get_sample_value(
            "gitops_agent_webhook_requests_total", {"provider": provider, "result": result}) or 0.0


@pytest.fixture
async def hooked(repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str, cluster: LocalCluster,
                 tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hooked]:
    monkeypatch.setenv("GITOPS_TEST_WEBHOOK_SECRET", SECRET)
    first = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "first")
    url = git_server.url(repo.name)
    name = f"hooked-{secrets.token_hex(3)}"
    others = [AppSpec(name=f"{name}-dev", repo=url, revision="dev", path="app", namespace=namespace),
              AppSpec(name=f"{name}-other", repo=git_server.url("elsewhere"), revision="main", namespace=namespace)]
    spec = AppSpec(name=name, repo=url, revision="main", path="app", namespace=namespace)
    settings = settings_for([spec, *others], state_dir=tmp_path / "state", kubeconfig=cluster.kubeconfig,
                            poll_interval=3600)
    settings = replace(settings, repositories=(
        RepoSpec(url=git_server.base_url, webhook_secret_env="GITOPS_TEST_WEBHOOK_SECRET"),))
    metrics = Metrics()
    controller = build_controller(settings, kube, metrics)
    port = free_port()
    app = build_app(controller=controller, metrics_=metrics, kube_check=kube.ping,
                    webhook=WebhookReceiver(settings, controller, metrics))
    async with serve(app, "127.0.0.1", port):
        controller.start()
        hooked = Hooked(controller, metrics, f"http://127.0.0.1:{port}", url, name)
        try:
            await eventually(lambda: hooked.revision() == first, within=20, what="the first sync")
            yield hooked
        finally:
            await controller.stop()


def github_push(url: str, ref: str = "refs/heads/main", *, secret: str = SECRET,
                delivery: str = "") -> tuple[bytes, dict[str, str]]:
    html = url.removesuffix(".git")  # only the html_url: matched after normalization
    body = json.dumps({"ref": ref, "repository": {"html_url": html, "full_name": "x/y"}}).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-GitHub-Event": "push",
                  "X-GitHub-Delivery": delivery or secrets.token_hex(8), "X-Hub-Signature-256": f"sha256={signature}"}


async def test_push_and_webhook_bring_the_app_to_the_new_commit_at_once(hooked: Hooked, repo: WorkTree) -> None:
    second = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "2"})}, "second")

    status, body = await hooked.post(*github_push(hooked.repo_url))

    assert (status, body) == (202, {"result": "refreshed", "refreshed": [hooked.app]})
    await eventually(lambda: hooked.revision() == second, within=15, what="the app at the pushed commit")
    current = hooked.controller.status(hooked.app)
    assert current is not None and current.revision is not None and current.revision.message == "second"
    assert hooked.webhook_count("github", "refreshed") == 1


async def test_push_to_another_branch_refreshes_only_the_apps_on_it(hooked: Hooked) -> None:
    status, body = await hooked.post(*github_push(hooked.repo_url, "refs/heads/dev"))
    assert (status, body) == (202, {"result": "refreshed", "refreshed": [f"{hooked.app}-dev"]})


async def test_bad_signature_is_refused_with_401_and_refreshes_nothing(hooked: Hooked, repo: WorkTree) -> None:
    first = hooked.revision()
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "3"})}, "unseen")

    status, body = await hooked.post(*github_push(hooked.repo_url, secret="not-the-secret"))

    assert status == 401 and body == {"error": "signature or token missing or wrong"}
    unsigned, headers = github_push(hooked.repo_url)
    del headers["X-Hub-Signature-256"]
    assert (await hooked.post(unsigned, headers))[0] == 401
    assert hooked.webhook_count("github", "unauthorized") == 2
    assert hooked.revision() == first


async def test_replayed_delivery_is_ignored(hooked: Hooked) -> None:
    body, headers = github_push(hooked.repo_url, delivery="delivery-1")
    assert (await hooked.post(body, headers))[0] == 202

    status, answer = await hooked.post(body, headers)

    assert (status, answer["result"]) == (200, "replayed")
    assert hooked.webhook_count("github", "replayed") == 1


async def test_oversized_body_is_refused_before_it_is_read(hooked: Hooked) -> None:
    body, headers = github_push(hooked.repo_url)
    padded = body[:-1] + b', "pad": "' + b"x" * (1024 * 1024) + b'"}'

    status, answer = await hooked.post(padded, headers)

    assert (status, answer) == (413, {"error": "the body is larger than 1048576 bytes"})

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the cap holds while reading
        for _ in range(20):
            yield b"x" * 65536

    async with aiohttp.ClientSession() as session, session.post(
        hooked.base_url + "/api/webhook", data=chunks(), headers=headers
    ) as resp:
        assert resp.status == 413
    assert hooked.webhook_count("github", "too_large") == 2


async def test_gitlab_gitea_and_generic_deliveries(hooked: Hooked) -> None:
    gitlab = json.dumps({"object_kind": "push", "ref": "refs/heads/main",
                         "project": {"git_http_url": hooked.repo_url}}).encode()
    assert (await hooked.post(gitlab, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": SECRET}))[0] == 202
    assert (await hooked.post(gitlab, {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"}))[0] == 401

    gitea = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": hooked.repo_url}}).encode()
    signature = hmac.new(SECRET.encode(), gitea, hashlib.sha256).hexdigest()
    status, body = await hooked.post(gitea, {"X-Gitea-Event": "push", "X-GitHub-Event": "push",
                                             "X-Gitea-Signature": signature})
    assert (status, body["refreshed"]) == (202, [hooked.app])

    generic = json.dumps({"repo": hooked.repo_url, "ref": "refs/heads/main"}).encode()
    assert (await hooked.post(generic, {"X-Gitops-Token": SECRET}))[0] == 202
    assert (await hooked.post(generic, {}))[0] == 401
    unknown = json.dumps({"repo": "https://nowhere.example.com/x.git"}).encode()
    status, body = await hooked.post(unknown, {"X-Gitops-Token": SECRET})
    assert (status, body["error"]) == (401, "no webhook secret is configured for this repository")
    assert (await hooked.post(b"{not json", {"X-Gitops-Token": SECRET}))[0] == 400
