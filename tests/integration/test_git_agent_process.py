"""The agent process against a password-protected git server: refused, rotated, webhook, and no leaks.

`gitops-agent run` with `[[repositories]]` credentials from a file. A wrong password
shows as a ComparisonError naming the repository; writing the right one into the file
and asking for a refresh syncs the app without a restart; a signed push webhook moves
it to the next commit although the poll interval is an hour. The password never
appears in the logs, the API or the metrics.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.integration.helpers import configmap, eventually
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree

USERNAME = "deploy-bot"
PASSWORD = "s3cr3t-pw-4a7f"
WEBHOOK_SECRET = "hook-5e1d"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "auth-srv", username=USERNAME, password=PASSWORD) as server:
        yield server


class Agent:
    def __init__(self, proc: asyncio.subprocess.Process, base_url: str, log_path: Path) -> None:
        self.proc, self.base_url, self.log_path = proc, base_url, log_path

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, str]:
        async with aiohttp.ClientSession() as session, session.request(
            method, self.base_url + path, data=body, headers=headers
        ) as resp:
            return resp.status, await resp.text()

    async def app(self, name: str) -> dict[str, Any] | None:
        try:
            status, text = await self.request("GET", f"/api/v1/applications/{name}")
        except aiohttp.ClientConnectionError:
            return None
        return json.loads(text) if status == 200 else None


@pytest.fixture
async def agent_process(tmp_path: Path, cluster: LocalCluster) -> AsyncIterator[Any]:
    procs: list[asyncio.subprocess.Process] = []

    async def start(body: str) -> Agent:
        port = free_port()
        config = tmp_path / "agent.toml"
        config.write_text(
            f'[agent]\nlisten = "127.0.0.1:{port}"\nstate_dir = "{tmp_path / "state"}"\n'
            f'kubeconfig = "{cluster.kubeconfig}"\npoll_interval = "1h"\npoll_jitter = "0s"\n\n{body}'
        )
        log_path = tmp_path / "agent.log"
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "agent", "run", "--config", str(config), "--log-format", "json",
            stdout=asyncio.subprocess.DEVNULL, stderr=log_path.open("wb"),
        )
        procs.append(proc)
        return Agent(proc, f"http://127.0.0.1:{port}", log_path)

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_credentials_rotation_webhook_and_no_secret_anywhere(
    agent_process: Any, auth_server: GitServer, tmp_path: Path, namespace: str
) -> None:
    auth_server.create_repo("team/config")
    work = WorkTree(auth_server, "team/config", tmp_path / "work")
    first = work.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "first\n\ndetails")
    url = auth_server.url("team/config")
    password_file = tmp_path / "password"
    password_file.write_text("wrong-" + PASSWORD + "\n")
    (tmp_path / "hook-secret").write_text(WEBHOOK_SECRET)
    agent = await agent_process(
        f'[[repositories]]\nurl = "{auth_server.base_url}team/"\nusername = "{USERNAME}"\n'
        f'password_file = "{password_file}"\nwebhook_secret_file = "{tmp_path / "hook-secret"}"\n\n'
        f'[[applications]]\nname = "private"\nrepo = "{url}"\nrevision = "main"\npath = "app"\n'
        f'namespace = "{namespace}"\n'
    )

    async def refused() -> dict[str, Any] | None:
        app = await agent.app("private")
        return app if app and app["conditions"] else None

    app = await eventually(refused, within=20, what="the refused app")
    assert app["sync_status"] == "Unknown"
    assert app["conditions"] == [{"type": "ComparisonError", "message": app["message"]}]
    assert app["message"].startswith(f"{url}: authentication refused")

    password_file.write_text(PASSWORD + "\n")  # rotated: read at the next request, no restart
    assert (await agent.request("POST", "/api/v1/applications/private/refresh"))[0] == 202

    async def at(sha: str) -> dict[str, Any] | None:
        app = await agent.app("private")
        return app if app and app["revision"] == sha and app["sync_status"] == "Synced" else None

    app = await eventually(lambda: at(first), within=20, what="the app synced after the rotation")
    assert (app["revision_message"], app["revision_author"]) == ("first", "Dev <dev@example.com>")
    assert app["revision_committed_at"] > 1_600_000_000
    assert app["source"]["repo"] == url

    second = work.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "2"})}, "second")
    payload = json.dumps({"ref": "refs/heads/main", "repository": {"clone_url": url}}).encode()
    signature = hmac.new(WEBHOOK_SECRET.encode(), payload, hashlib.sha256).hexdigest()
    status, text = await agent.request("POST", "/api/webhook", body=payload, headers={
        "X-GitHub-Event": "push", "X-GitHub-Delivery": "d-1", "X-Hub-Signature-256": f"sha256={signature}"})
    assert (status, json.loads(text)) == (202, {"result": "refreshed", "refreshed": ["private"]})
    await eventually(lambda: at(second), within=15, what="the app at the pushed commit without a poll")

    _, metrics = await agent.request("GET", "/metrics")
    assert f'gitops_agent_git_request_total{{repo="{url}",request="ls-remote",result="auth_failed"}}' in metrics
    assert 'gitops_agent_webhook_requests_total{provider="github",result="refreshed"} 1.0' in metrics
    _, listing = await agent.request("GET", "/api/v1/applications")
    _, detail = await agent.request("GET", "/api/v1/applications/private")
    agent.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(agent.proc.wait(), timeout=10) == 0
    logs = agent.log_path.read_text()
    for where, text in {"logs": logs, "metrics": metrics, "list": listing, "detail": detail}.items():
        assert PASSWORD not in text, f"the password leaked into the {where}"
        assert WEBHOOK_SECRET not in text, f"the webhook secret leaked into the {where}"
    assert "Traceback" not in logs
    assert any(json.loads(line)["msg"].startswith("webhook push: refs/heads/main refreshed private")
               for line in logs.splitlines())
