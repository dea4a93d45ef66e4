"""The agent process against a password-protected git server: refused, rotated, webhook, and no leaks.

`gitops-agent run` with `[[repositories]]` credentials from a file. A wrong password
shows as a ComparisonError naming the repository; writing the right one into the file
and asking for a refresh syncs the app without a restart; a signed push webhook moves
it to the next commit although the poll interval is an hour. The password never
appears in the logs, the API or the metrics.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import configmap, eventually
from tests.support.agent import StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree

USERNAME = "deploy-bot"
PASSWORD = "s3cr3t-pw-4a7f"
WEBHOOK_SECRET = "hook-5e1d"


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "auth-srv", username=USERNAME, password=PASSWORD) as server:
        yield server


async def test_credentials_rotation_webhook_and_no_secret_anywhere(
    start_agent: StartAgent, auth_server: GitServer, tmp_path: Path, namespace: str
) -> None:
    auth_server.create_repo("team/config")
    work = WorkTree(auth_server, "team/config", tmp_path / "work")
    first = work.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "first\n\ndetails")
    url = auth_server.url("team/config")
    password_file = tmp_path / "password"
    password_file.write_text("wrong-" + PASSWORD + "\n")
    (tmp_path / "hook-secret").write_text(WEBHOOK_SECRET)
    name = f"private-{secrets.token_hex(3)}"  # app labels are matched across namespaces: keep it unique
    agent = await start_agent(
        f'[[repositories]]\nurl = "{auth_server.base_url}team/"\nusername = "{USERNAME}"\n'
        f'password_file = "{password_file}"\nwebhook_secret_file = "{tmp_path / "hook-secret"}"\n\n'
        + application_toml(name, url, namespace=namespace, path="app", revision="main"),
        poll_interval="1h",
    )

    async def refused() -> dict[str, Any] | None:
        app = await agent.app(name)
        return app if app and app["conditions"] else None

    app = await eventually(refused, within=20, what="the refused app")
    assert app["sync_status"] == "Unknown"
    assert app["conditions"] == [{"type": "ComparisonError", "message": app["message"]}]
    assert app["message"].startswith(f"{url}: authentication refused")

    password_file.write_text(PASSWORD + "\n")  # rotated: read at the next request, no restart
    assert (await agent.request("POST", f"/api/v1/applications/{name}/refresh"))[0] == 202

    app = await eventually(lambda: agent.synced(name, first), within=20, what="the app synced after the rotation")
    assert (app["revision_message"], app["revision_author"]) == ("first", "Dev <dev@example.com>")
    assert app["revision_committed_at"] > 1_600_000_000
    assert app["source"]["repo"] == url

    second = work.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "2"})}, "second")
    payload = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": url}}).encode()
    signature = hmac.new(WEBHOOK_SECRET.encode(), payload, hashlib.sha256).hexdigest()
    status, text = await agent.request("POST", "/api/webhook", body=payload, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": f"sha256={signature}"})
    assert (status, json.loads(text)) == (202, {"result": "refreshed", "refreshed": [name]})
    await eventually(lambda: agent.synced(name, second), within=15, what="the app at the pushed commit without a poll")

    _, metrics = await agent.request("GET", "/metrics")
    assert f'gitops_agent_git_request_total{{repo="{url}",request="ls-remote",result="auth_failed"}}' in metrics
    assert 'gitops_agent_webhook_requests_total{provider="github",result="refreshed"} 1.0' in metrics
    _, listing = await agent.request("GET", "/api/v1/applications")
    _, detail = await agent.request("GET", f"/api/v1/applications/{name}")
    assert await agent.stop(grace=10) == 0
    logs = agent.log_path.read_text()
    for where, text in {"logs": logs, "metrics": metrics, "list": listing, "detail": detail}.items():
        assert PASSWORD not in text, f"the password leaked into the {where}"
        assert WEBHOOK_SECRET not in text, f"the webhook secret leaked into the {where}"
    assert "Traceback" not in logs
    assert any(json.loads(line)["msg"].startswith(f"webhook push: refs/heads/main refreshed {name}")
               for line in logs.splitlines())
