"""Which revisions a manual sync may name.

`POST /sync` with `{"revision": "refs/pull/7/head"}` would deploy a fork's pull request:
the ref is on the server, so it resolves and fetches. A manual sync may name only the
app's tracked revision, a revision in its sync history, or a commit reachable from the
tracked branch or tag (its past). Anything else is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from agent.config import AppSpec
from agent.errors import SourceError
from agent.source.resolver import FULL_SHA


class RevisionSource(Protocol):
    """What the check needs from git (GitSource provides it)."""

    async def resolve(self, url: str, revision: str) -> str: ...

    async def reachable(self, url: str, target: str, tip: str) -> bool: ...

    def invalidate(self, url: str) -> None: ...


class RevisionRefused(Exception):
    """A manual sync named a revision the app may not be synced to."""


async def check_manual_revision(source: RevisionSource, app: AppSpec, requested: str,
                                history: Collection[str]) -> None:
    """Return when `requested` may be synced manually; RevisionRefused (saying why) otherwise."""
    if requested == app.revision or requested in history:
        return
    try:
        sha = await source.resolve(app.repo, requested)
        if sha in history:
            return
        tracked = await source.resolve(app.repo, app.revision)
        if await _in_tracked_past(source, app, sha, tracked):
            return
        source.invalidate(app.repo)  # the shared ls-remote answer may predate a push: ask once more
        fresh = await source.resolve(app.repo, app.revision)
        if fresh != tracked and await _in_tracked_past(source, app, sha, fresh):
            return
    except SourceError as exc:
        raise RevisionRefused(f"revision {requested!r} cannot be checked: {exc}") from exc
    raise RevisionRefused(f"revision {requested!r} ({sha[:12]}) is neither the app's revision {app.revision!r}, "
                          f"nor in its sync history, nor reachable from {app.revision!r}")


async def _in_tracked_past(source: RevisionSource, app: AppSpec, sha: str, tracked: str) -> bool:
    """Whether `sha` is the tracked revision's commit or, for a branch or tag, one before it."""
    if sha == tracked:
        return True
    return not FULL_SHA.match(app.revision) and await source.reachable(app.repo, sha, tracked)
