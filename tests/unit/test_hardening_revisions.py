"""Which revisions a manual sync may name: the tracked one, the history, and the tracked revision's past."""

from __future__ import annotations

import pytest

from agent.config import AppSpec
from agent.controller.revisions import RevisionRefused, check_manual_revision
from agent.errors import SourceError

MAIN, OLD, FORK, GONE = "a" * 40, "b" * 40, "f" * 40, "9" * 40


class Repository:
    """Refs and ancestry of a repository: main at MAIN (OLD before it), a pull request at FORK."""

    def __init__(self) -> None:
        self.refs = {"main": MAIN, "refs/heads/main": MAIN, "refs/pull/7/head": FORK, "v1": OLD}
        self.walked: list[tuple[str, str]] = []
        self.invalidated = 0

    async def resolve(self, url: str, revision: str) -> str:
        if revision in self.refs:
            return self.refs[revision]
        if len(revision) == 40:
            return revision
        raise SourceError(f"{url}: revision {revision!r} not found (no such branch or tag)")

    async def reachable(self, url: str, target: str, tip: str) -> bool:
        self.walked.append((target, tip))
        return tip == MAIN and target in (MAIN, OLD)

    def invalidate(self, url: str) -> None:
        self.invalidated += 1


APP = AppSpec(name="shop", repo="https://git.example.com/shop.git", revision="main", path="app")


@pytest.mark.parametrize("requested", ["main", MAIN, OLD, "v1", GONE])
async def test_allowed_revisions(requested: str) -> None:
    await check_manual_revision(Repository(), APP, requested, history={GONE})


@pytest.mark.parametrize(
    ("requested", "reason"),
    [
        ("refs/pull/7/head", f"revision 'refs/pull/7/head' ({FORK[:12]}) is neither the app's revision 'main', "
                             "nor in its sync history, nor reachable from 'main'"),
        (FORK, "is neither the app's revision"),
        ("nope", "revision 'nope' cannot be checked: https://git.example.com/shop.git: revision 'nope' not found"),
    ],
)
async def test_refused_revisions_say_why(requested: str, reason: str) -> None:
    with pytest.raises(RevisionRefused) as caught:
        await check_manual_revision(Repository(), APP, requested, history={GONE})
    assert reason in str(caught.value)


async def test_an_app_pinned_to_a_commit_has_no_past_to_choose_from() -> None:
    repository = Repository()
    pinned = AppSpec(name="shop", repo=APP.repo, revision=MAIN, path="app")
    with pytest.raises(RevisionRefused):
        await check_manual_revision(repository, pinned, OLD, history=set())
    assert repository.walked == []
    await check_manual_revision(repository, pinned, MAIN, history=set())


async def test_a_push_the_shared_refs_have_not_seen_yet_is_looked_up_once_more() -> None:
    repository = Repository()
    repository.refs["main"] = OLD  # the shared ls-remote answer, from before main moved to MAIN

    async def fresh_resolve(url: str, revision: str) -> str:
        if repository.invalidated and revision == "main":
            return MAIN
        return await Repository.resolve(repository, url, revision)

    repository.resolve = fresh_resolve  # type: ignore[method-assign]
    await check_manual_revision(repository, APP, MAIN, history=set())
    assert repository.invalidated == 1
