"""State on disk with the agent as users run it (issue 8): restart without apply calls, rollback
and resume over the CLI, a pause that survives a restart, and a full disk."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.kube import KubeClient
from agent.state import SnapshotFile, records_on_disk
from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent, application_toml
from tests.support.gitserver import GitServer, WorkTree
from tests.support.metrics import sample_total


def app_config(name: str, url: str, namespace: str) -> str:
    return application_toml(name, url, namespace=namespace, path="app", revision="main")


async def reconciled_after(agent: AgentProcess, name: str, moment: float) -> dict[str, Any] | None:
    app = await agent.app(name)
    return app if app and (app["reconciled_at"] or 0) > moment else None


async def cli(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "agent", *args, stdout=subprocess.PIPE,
                                                stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def live_data(kube: KubeClient, namespace: str, name: str = "settings") -> Any:
    live = await kube.get({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace}})
    return None if live is None else live["data"]


async def test_restarted_agent_serves_the_snapshot_and_applies_nothing(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str
) -> None:
    name = f"steady-{secrets.token_hex(3)}"
    sha = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"}),
                                "app/more.yaml": configmap("more", {"v": "1"})}, "one")
    config = app_config(name, git_server.url(repo.name), namespace)
    first = await start_agent(config)
    await eventually(lambda: first.synced(name, sha), within=20, what="Synced")
    patches_before = await first.metric("gitops_agent_kube_requests_total", verb="patch")
    assert patches_before >= 2  # the two applies
    assert await first.stop() == 0
    assert '"msg": "stopped"' in first.logs

    restarted_at = time.time()
    second = await start_agent(config)
    served = await eventually(lambda: second.app(name), within=15, what="the restarted agent's API")
    assert served["sync_status"] == "Synced" and served["revision"] == sha  # from the snapshot, or already compared
    await eventually(lambda: reconciled_after(second, name, restarted_at), within=20, what="a real reconcile")
    assert (await second.get("/readyz"))[0] == 200
    metrics = await second.metrics()
    assert sample_total(metrics, "gitops_agent_state_load_total", result="primary") == 1.0
    assert sample_total(metrics, "gitops_agent_kube_requests_total", verb="patch") == 0.0, "no apply, no dry-run"
    assert sample_total(metrics, "gitops_agent_kube_requests_total", verb="get") > 0


async def test_rollback_pauses_auto_sync_across_a_restart_until_a_new_commit(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str
) -> None:
    name = f"rollback-{secrets.token_hex(3)}"
    config = app_config(name, git_server.url(repo.name), namespace)
    v1 = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "version one")
    agent = await start_agent(config)
    await eventually(lambda: agent.synced(name, v1), within=20, what="Synced at v1")
    v2 = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "2"})}, "version two")
    assert await agent.post(f"/api/v1/applications/{name}/refresh") == 202
    await eventually(lambda: agent.synced(name, v2), within=20, what="Synced at v2")

    code, out, err = await cli("history", name, "--server", agent.base_url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["ID", "REVISION", "TRIGGER", "PHASE"]
    assert [line.split()[:4] for line in lines[1:]] == [["2", v2[:7], "auto", "Succeeded"],
                                                         ["1", v1[:7], "auto", "Succeeded"]]

    code, out, err = await cli("rollback", name, "--server", agent.base_url)
    assert code == 0, err
    assert f"rolled back to {v1[:7]}: Succeeded" in out and "auto-sync paused" in out
    assert await live_data(kube, namespace) == {"v": "1"}
    app = await agent.app(name)
    assert app is not None and v1[:7] in app["auto_sync_paused"]["reason"]
    assert app["history"][0]["trigger"] == "rollback" and app["history"][0]["revision"] == v1

    # A poll on the unchanged branch does not undo the rollback, and neither does a restart.
    moment = time.time()
    assert await agent.post(f"/api/v1/applications/{name}/refresh") == 202
    app = await eventually(lambda: reconciled_after(agent, name, moment), within=20, what="a reconcile")
    assert app["sync_status"] == "OutOfSync" and "auto-sync paused" in app["message"]
    assert await agent.stop() == 0
    agent = await start_agent(config)
    moment = time.time()
    app = await eventually(lambda: reconciled_after(agent, name, moment), within=20, what="a reconcile")
    assert app["auto_sync_paused"] is not None and app["sync_status"] == "OutOfSync"
    assert await live_data(kube, namespace) == {"v": "1"}

    v3 = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "3"})}, "version three")
    assert await agent.post(f"/api/v1/applications/{name}/refresh") == 202
    app = await eventually(lambda: agent.synced(name, v3), within=20, what="Synced at v3 after the new commit")
    assert app["auto_sync_paused"] is None
    assert await live_data(kube, namespace) == {"v": "3"}
    assert [(h["trigger"], h["revision"]) for h in app["history"]] == [
        ("auto", v3), ("rollback", v1), ("auto", v2), ("auto", v1)]
    assert "auto-sync resumed: a new commit arrived" in agent.logs


async def test_resume_over_the_cli_syncs_the_tracked_revision_again(
    start_agent: StartAgent, repo: WorkTree, git_server: GitServer, kube: KubeClient, namespace: str
) -> None:
    name = f"resume-{secrets.token_hex(3)}"
    v1 = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "version one")
    agent = await start_agent(app_config(name, git_server.url(repo.name), namespace))
    await eventually(lambda: agent.synced(name, v1), within=20, what="Synced at v1")
    v2 = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "2"})}, "version two")
    assert await agent.post(f"/api/v1/applications/{name}/refresh") == 202
    await eventually(lambda: agent.synced(name, v2), within=20, what="Synced at v2")

    status, body = await agent.request("POST", f"/api/v1/applications/{name}/rollback",
                                       body=json.dumps({"revision": "ffff0000"}).encode())
    assert status == 409 and "not in the sync history" in json.loads(body)["error"]
    status, body = await agent.request("POST", f"/api/v1/applications/{name}/rollback",
                                       body=json.dumps({"revision": v1[:8]}).encode())
    assert status == 200, body
    assert json.loads(body)["phase"] == "Succeeded" and json.loads(body)["auto_sync_paused"] is True
    assert await live_data(kube, namespace) == {"v": "1"}

    code, out, err = await cli("resume", name, "--server", agent.base_url)
    assert code == 0 and "auto-sync resumed" in out, err
    app = await eventually(lambda: agent.synced(name, v2), within=20, what="Synced at v2 again")
    assert app["auto_sync_paused"] is None and await live_data(kube, namespace) == {"v": "2"}
    assert [h["trigger"] for h in app["history"]] == ["auto", "rollback", "auto", "auto"]
    code, _, err = await cli("rollback", "no-such-app", "--server", agent.base_url)
    assert code == 2 and "HTTP 404" in err and "deprecated" in err


# ------------------------------------------------------------------ disk full


@pytest.fixture
def tiny_state_dir(tmp_path: Path) -> Iterator[Path]:
    """The agent's state_dir (tmp_path/state, as start_agent sets it) on a 1 MiB tmpfs."""
    mount_point = tmp_path / "state"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)], check=True,
                   capture_output=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False, capture_output=True)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)
    probe = directory / "probe"
    with pytest.raises(OSError) as raised:
        probe.write_bytes(b"x" * 8192)
    assert raised.value.errno == errno.ENOSPC
    probe.unlink(missing_ok=True)
    return filler


def temporaries(directory: Path) -> list[Path]:
    return list(directory.glob(".state.json.tmp-*"))


def history_on_disk(directory: Path, name: str) -> int:
    """The app's history entries as the snapshot and its journal hold them (agent.state.journal)."""
    assert SnapshotFile(directory).load().source == "primary"
    return len(records_on_disk(directory)[name]["history"])


async def history_written(directory: Path, name: str, entries: int) -> bool:
    """For polling: whether the state on disk already holds `entries` history entries of the app
    (the writer runs about once a second, so the first snapshot may not be there yet)."""
    records = records_on_disk(directory)
    return name in records and len(records[name]["history"]) == entries


async def test_disk_full_keeps_the_old_snapshot_reports_and_keeps_serving(
    tiny_state_dir: Path, start_agent: StartAgent, repo: WorkTree, git_server: GitServer, namespace: str
) -> None:
    name = f"full-{secrets.token_hex(3)}"
    v1 = repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "one")
    agent = await start_agent(app_config(name, git_server.url(repo.name), namespace))
    await eventually(lambda: agent.synced(name, v1), within=20, what="Synced")
    await eventually(lambda: history_written(tiny_state_dir, name, 1), within=5, what="a snapshot")
    filler = fill(tiny_state_dir)

    async def failed_writes() -> float:
        return await agent.metric("gitops_agent_state_write_total", result="failed")

    # Manual syncs, one more history entry each, until a write fails: the first may still fit into
    # the free end of the journal's last page, which a full disk does not take away.
    syncs = 0
    while not await failed_writes() and syncs < 5:
        status, body = await agent.request("POST", f"/api/v1/applications/{name}/sync")
        assert status == 200, body
        syncs += 1
        with contextlib.suppress(AssertionError):
            await eventually(failed_writes, within=2, what="a failed snapshot write to be counted")
    assert await failed_writes(), "a write failed"
    assert "cannot write the state snapshot; the previous one is kept" in agent.logs
    on_disk = history_on_disk(tiny_state_dir, name)
    assert 1 <= on_disk <= syncs, "what was written before is intact; the failed write is not on disk"
    assert not temporaries(tiny_state_dir), "no partial file left behind"
    assert (await agent.get("/healthz"))[0] == 200
    app = await agent.app(name)
    assert app is not None and len(app["history"]) == 1 + syncs and app["sync_status"] == "Synced"

    filler.unlink()
    await eventually(lambda: history_written(tiny_state_dir, name, 1 + syncs), within=5,
                     what="the snapshot to be written once there is room")
    assert "state snapshot written again after failures" in agent.logs
    assert await agent.stop() == 0
