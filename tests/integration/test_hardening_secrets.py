"""Secrets against the agent process: a token as a URL's user name, and files only the agent may read."""

from __future__ import annotations

import asyncio
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent
from tests.support.gitserver import GitServer, WorkTree

TOKEN = "ghp_" + "7e57" * 9  # the shape of a GitHub token, used as the user name
WRONG = "ghp_" + "bad0" * 9


@pytest.fixture
def token_server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "token-srv", username=TOKEN, password="") as server:
        yield server


async def reconciled(agent: AgentProcess, name: str, *, conditions: bool) -> dict[str, Any] | None:
    app = await agent.app(name)
    return app if app and app["reconciled_at"] and bool(app["conditions"]) is conditions else None


async def test_a_token_as_the_user_name_never_shows(
    start_agent: StartAgent, token_server: GitServer, tmp_path: Path, namespace: str
) -> None:
    token_server.create_repo("team/config")
    work = WorkTree(token_server, "team/config", tmp_path / "work")
    work.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "one")
    at = f"127.0.0.1:{token_server.port}/team/config.git"
    suffix = secrets.token_hex(3)
    apps = {f"good-{suffix}": (TOKEN, "HEAD"), f"refused-{suffix}": (WRONG, "HEAD"),
            f"missing-{suffix}": (TOKEN, "no-such-branch")}
    agent = await start_agent("".join(
        f'[[applications]]\nname = "{name}"\nrepo = "http://{user}@{at}"\nrevision = "{revision}"\n'
        f'path = "app"\nnamespace = "{namespace}"\n\n' for name, (user, revision) in apps.items()))

    good = await eventually(lambda: reconciled(agent, f"good-{suffix}", conditions=False), within=20,
                            what="the app synced")
    assert good["sync_status"] == "Synced" and good["source"]["repo"] == f"http://{at}"
    refused = await eventually(lambda: reconciled(agent, f"refused-{suffix}", conditions=True), within=20,
                               what="the refused app")
    assert refused["message"].startswith(f"http://{at}: authentication refused")
    missing = await eventually(lambda: reconciled(agent, f"missing-{suffix}", conditions=True), within=20,
                               what="the app with an unknown branch")
    assert missing["message"] == f"http://{at}: revision 'no-such-branch' not found (no such branch or tag)"

    state = tmp_path / "state" / "state.json"
    journal = tmp_path / "state" / "state.journal"  # the records changed since the snapshot
    await eventually(lambda: _contains(state, f"missing-{suffix}", journal), within=10, what="the state snapshot")
    shown = {
        "API list": (await agent.get("/api/v1/applications"))[1],
        "API apps": "".join([(await agent.get(f"/api/v1/applications/{name}"))[1] for name in apps]),
        "metrics": (await agent.get("/metrics"))[1],
        "logs": agent.logs,
        "state.json": state.read_text(),
        "state.journal": journal.read_text() if journal.exists() else "",
    }
    assert f"http://{at}" in shown["metrics"]  # the git request series are there, by the redacted URL
    for where, text in shown.items():
        for token in (TOKEN, WRONG, TOKEN[4:], WRONG[4:]):
            assert token not in text, f"a token shows in the {where}"


async def _contains(path: Path, text: str, *more: Path) -> bool:
    """Whether one of the files holds `text`."""
    return await asyncio.to_thread(lambda: any(file.exists() and text in file.read_text() for file in (path, *more)))


async def test_the_state_directory_and_cache_are_private_whatever_the_umask(
    start_agent: StartAgent, git_server: GitServer, repo: WorkTree, tmp_path: Path, namespace: str
) -> None:
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"v": "1"})}, "one")
    name = f"private-{secrets.token_hex(3)}"
    previous = os.umask(0)  # the agent inherits it
    try:
        agent = await start_agent(f'[[applications]]\nname = "{name}"\nrepo = "{git_server.url(repo.name)}"\n'
                                  f'path = "app"\nnamespace = "{namespace}"\n')
    finally:
        os.umask(previous)
    await eventually(lambda: reconciled(agent, name, conditions=False), within=20, what="the app synced")
    state = tmp_path / "state"
    await eventually(lambda: _contains(state / "state.json", name, state / "state.journal"), within=10,
                     what="the state snapshot")
    exposed = await asyncio.to_thread(_open_to_others, state)
    assert not exposed, f"readable by others: {exposed[:10]}"
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "repos").stat().st_mode) == 0o700


def _open_to_others(root: Path) -> list[str]:
    found = []
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) & 0o077:
            found.append(f"{path.relative_to(root)} {stat.S_IMODE(path.stat().st_mode):o}")
    return found
