"""Repository credentials the Argo CD way: Secrets in `[agent] credentials_namespace`, watched. A
`repo-creds` Secret for the server's prefix with a wrong password fails the app; a `repository` Secret
for the exact URL, created while the agent runs, wins over it and the app syncs without a restart or
a refresh. No password shows in the log or the API."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.kube import KubeClient
from tests.integration.helpers import configmap, eventually
from tests.support.agent import StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree

USERNAME = "argocd-bot"
PASSWORD = "pat-7c1e-" + secrets.token_hex(4)


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "private-srv", username=USERNAME, password=PASSWORD) as server:
        yield server


def credentials_secret(name: str, namespace: str, *, kind: str, url: str, password: str) -> dict[str, Any]:
    data = {"type": "git", "url": url, "username": USERNAME, "password": password}
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {"argocd.argoproj.io/secret-type": kind}},
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}


async def test_repository_secrets_are_watched_and_the_exact_url_wins(start_agent: StartAgent,
                                                                      private_server: GitServer, tmp_path: Path,
                                                                      namespace: str, kube: KubeClient) -> None:
    private_server.create_repo("team/config")
    work = WorkTree(private_server, "team/config", tmp_path / "work")
    sha = work.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "first")
    url = private_server.url("team/config")
    secrets_path = f"/api/v1/namespaces/{namespace}/secrets"
    await kube.request("POST", secrets_path, body=credentials_secret(
        "team-creds", namespace, kind="repo-creds", url=f"{private_server.base_url}team/", password="wrong"))
    name = f"private-{secrets.token_hex(3)}"
    agent = await start_agent(application_toml(name, url, namespace=namespace, path="app", revision="main"),
                              poll_interval="1h", agent_keys={"credentials_namespace": json.dumps(namespace)})

    async def refused() -> dict[str, Any] | None:
        app = await agent.app(name)
        return app if app and app["conditions"] else None

    app = await eventually(refused, within=30, what="the app refused with the repo-creds password")
    assert "authentication refused" in app["message"]

    await kube.request("POST", secrets_path, body=credentials_secret(
        "config-repo", namespace, kind="repository", url=url, password=PASSWORD))
    await eventually(lambda: agent.synced(name, sha), within=30, what="the app synced with the repository Secret")

    _, listing = await agent.request("GET", "/api/v1/applications")
    _, detail = await agent.request("GET", f"/api/v1/applications/{name}")
    assert await agent.stop() == 0
    for where, text in {"log": agent.logs, "list": listing, "detail": detail}.items():
        assert PASSWORD not in text, f"the password leaked into the {where}"
    assert "repository credentials from Secrets: 2 in use" in agent.logs
