"""The notify protocol's messages, over real datagram sockets (path and abstract), and its failure mode."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.leader import SingleInstance
from agent.model import AppStatus, HealthStatus, SyncStatus
from agent.notify import Notifier, status_line


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2)
    yield str(path), sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_environment_is_read_and_removed_so_children_do_not_inherit_it() -> None:
    environ = {"NOTIFY_SOCKET": "/run/systemd/notify", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "42",
               "PATH": "/bin"}
    notifier = Notifier.from_environment(environ, pid=42)
    assert notifier.address == "/run/systemd/notify" and notifier.watchdog_interval == 15.0
    assert environ == {"PATH": "/bin"}


def test_watchdog_meant_for_another_process_is_ignored() -> None:
    notifier = Notifier.from_environment({"NOTIFY_SOCKET": "/x", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "7"},
                                         pid=8)
    assert notifier.watchdog_interval is None


def test_ready_status_and_stopping_arrive_as_datagrams(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    notifier = Notifier(path)
    notifier.ready("leader; 2 applications: 2 Synced")
    assert received(sock) == ["READY=1", "STATUS=leader; 2 applications: 2 Synced"]
    notifier.status("leader; 2 applications: 2 Synced")  # unchanged: nothing sent
    notifier.status("leader; 2 applications: 1 OutOfSync, 1 Synced")
    assert received(sock) == ["STATUS=leader; 2 applications: 1 OutOfSync, 1 Synced"]
    notifier.stopping()
    assert received(sock)[0] == "STOPPING=1"


def test_reloading_is_followed_by_ready_again(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    notifier = Notifier(path)
    notifier.ready("ok")
    received(sock)
    notifier.reloading()
    first = received(sock)
    assert first[0] == "RELOADING=1" and first[1].startswith("MONOTONIC_USEC=")
    notifier.reloaded()
    assert received(sock) == ["READY=1", "STATUS=ok"]


def test_abstract_socket_address_starting_with_at() -> None:
    name = f"gitops-agent-test-{secrets.token_hex(4)}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert Notifier("@" + name).send("WATCHDOG=1")
        assert received(sock) == ["WATCHDOG=1"]
    finally:
        sock.close()


def test_a_missing_socket_is_logged_once_and_sending_goes_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    notifier = Notifier(str(tmp_path / "nowhere.sock"))
    assert notifier.send("READY=1") is False
    assert notifier.send("WATCHDOG=1") is False
    lines = [r.getMessage() for r in caplog.records if "NOTIFY_SOCKET" in r.getMessage()]
    assert len(lines) == 1
    assert "No such file or directory" in lines[0] and "keeps running" in lines[0]


async def test_run_sends_ready_once_ready_and_watchdog_pings(receiver: tuple[str, socket.socket]) -> None:
    path, sock = receiver
    sock.setblocking(False)
    notifier = Notifier(path, watchdog_interval=0.05)
    state = {"ready": False}
    task = asyncio.create_task(notifier.run(is_ready=lambda: state["ready"], status=lambda: "starting", tick=0.01))
    await asyncio.sleep(0.2)
    state["ready"] = True
    await asyncio.sleep(0.1)
    task.cancel()
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            break
    assert messages.count("WATCHDOG=1") >= 4
    ready = [m for m in messages if m.startswith("READY=1")]
    assert ready == ["READY=1\nSTATUS=starting"]
    assert messages.index(ready[0]) > messages.index("WATCHDOG=1")  # pings started before READY


def test_status_line_summarises_sync_and_health() -> None:
    statuses = [
        AppStatus(name="a", sync_status=SyncStatus.SYNCED, health_status=HealthStatus.HEALTHY, reconciled_at=1.0),
        AppStatus(name="b", sync_status=SyncStatus.OUT_OF_SYNC, health_status=HealthStatus.DEGRADED,
                  reconciled_at=1.0),
        AppStatus(name="c"),
    ]
    assert status_line(statuses, SingleInstance()) == (
        "leader; 3 applications: 1 OutOfSync, 1 Synced, 1 not yet reconciled; 1 Degraded"
    )


async def test_without_notify_socket_nothing_is_sent_and_run_returns() -> None:
    notifier = Notifier.from_environment({})
    assert not notifier.enabled and notifier.send("READY=1") is False
    await asyncio.wait_for(notifier.run(is_ready=lambda: True, status=lambda: ""), timeout=1)
