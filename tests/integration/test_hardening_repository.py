"""Hostile repositories against the agent process: a shared-subtree bomb fails its own app only."""

from __future__ import annotations

import secrets
import subprocess
from typing import Any

from tests.integration.helpers import configmap, eventually
from tests.support.agent import AgentProcess, StartAgent
from tests.support.gitserver import GitServer, WorkTree, git_env

LEVELS = 40  # 2**40 paths below `bomb/`, from 41 tree objects


def plumbing(repo: WorkTree, *args: str, stdin: str = "") -> str:
    """A git plumbing command in the work tree, with `stdin` as its input."""
    done = subprocess.run(["git", *args], cwd=repo.workdir, env=git_env(), input=stdin, capture_output=True,
                          text=True, timeout=60, check=True)
    return done.stdout.strip()


def commit_with(repo: WorkTree, entries: dict[str, str], message: str) -> str:
    """Commit HEAD's tree with top-level `entries` (name → `git mktree` line) replaced, and push it."""
    listing = {line.split("\t", 1)[1]: line for line in plumbing(repo, "ls-tree", "HEAD").splitlines()}
    listing.update(entries)
    tree = plumbing(repo, "mktree", stdin="".join(line + "\n" for line in listing.values()))
    sha = plumbing(repo, "commit-tree", tree, "-p", "HEAD", "-m", message)
    plumbing(repo, "update-ref", "refs/heads/main", sha)
    repo.push()
    return sha


def shared_subtree_bomb(repo: WorkTree) -> str:
    """A tree whose entries `a` and `b` name the same tree, LEVELS deep; returns its SHA."""
    tree = plumbing(repo, "mktree")  # the empty tree
    for _ in range(LEVELS):
        tree = plumbing(repo, "mktree", stdin=f"040000 tree {tree}\ta\n040000 tree {tree}\tb\n")
    return tree


def directory_with(repo: WorkTree, files: dict[str, str]) -> str:
    lines = [f"100644 blob {plumbing(repo, 'hash-object', '-w', '--stdin', stdin=content)}\t{name}\n"
             for name, content in files.items()]
    return plumbing(repo, "mktree", stdin="".join(lines))


async def status_of(agent: AgentProcess, name: str, *, sync_status: str, revision: str = "") -> dict[str, Any] | None:
    app = await agent.app(name)
    if app is None or not app["reconciled_at"] or app["sync_status"] != sync_status:
        return None
    return app if not revision or app["revision"] == revision else None


async def test_a_shared_subtree_bomb_fails_its_app_and_spares_the_others(
    start_agent: StartAgent, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    repo.commit_and_push({"good/cm.yaml": configmap("good", {"v": "1"})}, "a good app")
    bombed = commit_with(repo, {"bomb": f"040000 tree {shared_subtree_bomb(repo)}\tbomb"}, "2^40 paths")
    suffix = secrets.token_hex(3)
    bomb, good = f"bomb-{suffix}", f"good-{suffix}"
    url = git_server.url(repo.name)
    agent = await start_agent(
        "".join(f'[[applications]]\nname = "{name}"\nrepo = "{url}"\npath = "{path}"\nnamespace = "{namespace}"\n\n'
                for name, path in ((bomb, "bomb"), (good, "good"))),
    )

    failed = await eventually(lambda: status_of(agent, bomb, sync_status="Unknown"), within=30,
                              what="the bombed app failing")
    assert [c["type"] for c in failed["conditions"]] == ["ComparisonError"]
    assert "files, directories and links (max_repo_files)" in failed["message"]
    await eventually(lambda: status_of(agent, good, sync_status="Synced", revision=bombed), within=30,
                     what="the good app synced at the same commit")

    # The walk has ended: the next fetch of the repository (it needs the write lock) goes through.
    good_tree = directory_with(repo, {"cm.yaml": configmap("good", {"v": "2"})})
    moved = commit_with(repo, {"good": f"040000 tree {good_tree}\tgood"}, "the good app changes")
    assert await agent.post(f"/api/v1/applications/{good}/refresh") == 202
    await eventually(lambda: status_of(agent, good, sync_status="Synced", revision=moved), within=30,
                     what="the good app at the next commit")
    status, _ = await agent.get("/healthz")
    assert status == 200
