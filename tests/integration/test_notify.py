"""The agent process speaks systemd's notify protocol to a real datagram socket, as under `Type=notify`."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.integration.helpers import configmap, eventually
from tests.support.agent import StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree


@dataclass
class NotifySocket:
    """What systemd's side of NOTIFY_SOCKET receives: (monotonic time, fields) per datagram."""

    path: str
    messages: list[tuple[float, list[str]]] = field(default_factory=list)

    def received(self, first_field: str) -> list[tuple[float, list[str]]]:
        return [m for m in self.messages if m[1][0] == first_field]


@pytest.fixture
async def notify_socket() -> AsyncIterator[NotifySocket]:
    directory = tempfile.mkdtemp(prefix="ga-notify-")  # short: a socket path has at most 107 bytes
    path = f"{directory}/notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    received = NotifySocket(path)
    loop = asyncio.get_running_loop()

    async def read() -> None:
        while True:
            data = await loop.sock_recv(sock, 4096)
            received.messages.append((time.monotonic(), data.decode().split("\n")))

    reader = asyncio.create_task(read())
    yield received
    reader.cancel()
    sock.close()
    shutil.rmtree(directory, ignore_errors=True)


async def test_ready_after_the_first_reconcile_watchdog_pings_reloading_and_stopping(
    repo: WorkTree, git_server: GitServer, namespace: str, notify_socket: NotifySocket, start_agent: StartAgent,
) -> None:
    name = f"notified-{secrets.token_hex(3)}"
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"k": "v"})}, "one")
    started = time.monotonic()
    agent = await start_agent(application_toml(name, git_server.url(repo.name), namespace=namespace, path="app"),
                              env={"NOTIFY_SOCKET": notify_socket.path, "WATCHDOG_USEC": "1000000"})

    async def ready() -> list[tuple[float, list[str]]]:
        return notify_socket.received("READY=1")

    (at, fields), = await eventually(ready, within=30, what="READY=1")
    assert fields[1] == "STATUS=leader; 1 applications: 1 Synced", fields
    app = await agent.app(name)
    assert app is not None and app["reconciled_at"] is not None and app["sync_status"] == "Synced"
    pings_before_ready = [t for t, _ in notify_socket.received("WATCHDOG=1") if t < at]
    assert pings_before_ready and pings_before_ready[0] - started < 5  # the watchdog runs from the start

    async def three_pings() -> list[float]:
        pings = [t for t, _ in notify_socket.received("WATCHDOG=1") if t > at]
        return pings if len(pings) >= 3 else []

    # One every WATCHDOG_USEC / 2 = 0.5 s: at least three within 2.2 s.
    pings = await eventually(three_pings, within=2.2, interval=0.05, what="three watchdog pings after READY=1")
    assert max(b - a for a, b in itertools.pairwise(pings)) < 0.9

    agent.proc.send_signal(signal.SIGHUP)

    async def ready_again() -> bool:
        return len(notify_socket.received("READY=1")) == 2

    await eventually(ready_again, within=5, what="READY=1 after RELOADING=1")
    (reloading_at, reloading), = notify_socket.received("RELOADING=1")
    assert reloading[1].startswith("MONOTONIC_USEC=")
    assert notify_socket.received("READY=1")[1][0] > reloading_at
    assert "configuration reloaded from" in agent.logs and "nothing changed" in agent.logs
    assert agent.proc.returncode is None

    assert await agent.stop() == 0
    (_, stopping), = notify_socket.received("STOPPING=1")
    assert stopping[1].startswith("STATUS=stopping")


async def test_a_notify_socket_that_does_not_exist_is_one_log_line_and_the_agent_runs_on(
    repo: WorkTree, git_server: GitServer, namespace: str, tmp_path: Path, start_agent: StartAgent,
) -> None:
    name = f"unnotified-{secrets.token_hex(3)}"
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"k": "v"})}, "one")
    agent = await start_agent(application_toml(name, git_server.url(repo.name), namespace=namespace, path="app"),
                              env={"NOTIFY_SOCKET": str(tmp_path / "missing.sock"), "WATCHDOG_USEC": "400000"})
    await eventually(lambda: agent.synced(name), within=30, what="the app Synced")
    await asyncio.sleep(1)  # several watchdog pings fail meanwhile
    lines = [e for e in agent.events if "NOTIFY_SOCKET" in e["msg"]]
    assert len(lines) == 1 and lines[0]["level"] == "warning"
    assert "missing.sock" in lines[0]["msg"] and "No such file or directory" in lines[0]["msg"]
    assert await agent.stop() == 0
