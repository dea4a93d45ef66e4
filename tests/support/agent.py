"""The agent as users run it: `python -m agent run --config FILE` in a subprocess, and its HTTP API."""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class AgentProcess:
    def __init__(self, proc: asyncio.subprocess.Process, base_url: str, log_path: Path,
                 config_path: Path | None = None) -> None:
        self.proc, self.base_url, self.log_path = proc, base_url, log_path
        self.config_path = config_path  # the file it was started with: rewrite it and send SIGHUP to reload

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        """One request; a POST says it is JSON unless `headers` say otherwise (the API refuses it else)."""
        if method == "POST":
            headers = {"Content-Type": "application/json", **(headers or {})}
        async with aiohttp.ClientSession() as session, session.request(
            method, self.base_url + path, data=body, headers=headers
        ) as resp:
            return resp.status, await resp.text()

    async def get(self, path: str) -> tuple[int, str]:
        return await self.request("GET", path)

    async def post(self, path: str) -> int:
        return (await self.request("POST", path))[0]

    async def app(self, name: str) -> dict[str, Any] | None:
        """The app as `GET /api/v1/applications/{name}` shows it; None while the agent is not up."""
        try:
            status, text = await self.get(f"/api/v1/applications/{name}")
        except aiohttp.ClientConnectionError:
            return None
        return json.loads(text) if status == 200 else None

    async def reconciled(self, name: str) -> dict[str, Any] | None:
        app = await self.app(name)
        return app if app and app["reconciled_at"] else None

    @property
    def logs(self) -> str:
        return self.log_path.read_text()


StartAgent = Callable[..., Awaitable[AgentProcess]]


async def agent_processes(tmp_path: Path, kubeconfig: Path) -> AsyncIterator[StartAgent]:
    """Yields `start(config_body, *, kubeconfig=None, poll_interval="1m", env=None)`; kills leftovers after."""
    procs: list[asyncio.subprocess.Process] = []

    async def start(config_body: str, *, kubeconfig_path: Path | None = None, poll_interval: str = "1m",
                    env: Mapping[str, str] | None = None) -> AgentProcess:
        port = free_port()
        config = tmp_path / f"agent-{port}.toml"
        config.write_text(
            f'[agent]\nlisten = "127.0.0.1:{port}"\nstate_dir = "{tmp_path / "state"}"\n'
            f'kubeconfig = "{kubeconfig_path or kubeconfig}"\npoll_interval = "{poll_interval}"\n'
            f'poll_jitter = "0s"\n\n' + config_body
        )
        log_path = tmp_path / f"agent-{port}.log"
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent", "run", "--config", str(config), "--log-format", "json",
                stdout=asyncio.subprocess.DEVNULL, stderr=log, env=dict(env) if env is not None else None,
            )
        procs.append(proc)
        return AgentProcess(proc, f"http://127.0.0.1:{port}", log_path, config)

    yield start
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
