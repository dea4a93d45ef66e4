"""Which commit a revision names: one shared ls-remote per repository per interval.

`RefCache` is a single-flight cache with a TTL: however many apps ask about a
repository at once or within the TTL, one ls-remote is made and every caller gets
its answer. `invalidate` (a webhook or a manual refresh) drops the answer and
detaches any ls-remote already in flight, so the next caller asks the server again.
`match_revision` is the pure part: a branch, tag, full ref or HEAD against the refs.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

Refs = Mapping[bytes, bytes]
LsRemote = Callable[[str], Awaitable[Refs]]

FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
SHORT_SHA = re.compile(r"^[0-9a-f]{4,39}$")
# A failed ls-remote is remembered this long (at most the TTL), so a hundred apps
# retrying an unreachable server do not each knock on it.
ERROR_TTL = 2.0


def match_revision(refs: Refs, revision: str) -> str | None:
    """The commit SHA a branch, tag, full ref name or HEAD names in `refs`; tags win over branches.

    An annotated tag resolves to the commit it points at (the peeled `^{}` entry).
    """
    wanted = revision.encode()
    if revision == "HEAD":
        candidates = [b"HEAD"]
    elif revision.startswith("refs/"):
        candidates = [wanted + b"^{}", wanted]
    else:
        candidates = [b"refs/tags/" + wanted + b"^{}", b"refs/tags/" + wanted, b"refs/heads/" + wanted]
    for name in candidates:
        sha = refs.get(name)
        if sha:
            return sha.decode()
    return None


def tips_with_prefix(refs: Refs, prefix: str) -> set[str]:
    """Ref tips (peeled) whose SHA starts with a short SHA."""
    found: set[str] = set()
    for name, sha in refs.items():
        peeled = refs.get(name + b"^{}", sha) if not name.endswith(b"^{}") else sha
        if peeled.decode().startswith(prefix):
            found.add(peeled.decode())
    return found


@dataclass
class _Answer:
    refs: Refs | None
    error: BaseException | None
    at: float


@dataclass
class _Flight:
    task: asyncio.Task[Refs]
    generation: int


class RefCache:
    """Single-flight, TTL-bounded ls-remote results per repository URL."""

    def __init__(self, ls_remote: LsRemote, *, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ls_remote = ls_remote
        self.ttl = ttl  # may be changed while running (a configuration reload)
        self._clock = clock
        self._answers: dict[str, _Answer] = {}
        self._flights: dict[str, _Flight] = {}
        self._generations: dict[str, int] = {}

    async def get(self, url: str) -> Refs:
        """The refs of `url`, from a recent answer, the ls-remote in flight, or a new one."""
        answer = self._answers.get(url)
        if answer is not None:
            age = self._clock() - answer.at
            if answer.refs is not None and age < self.ttl:
                return answer.refs
            if answer.error is not None and age < min(ERROR_TTL, self.ttl):
                raise answer.error.with_traceback(None)
        generation = self._generations.get(url, 0)
        flight = self._flights.get(url)
        if flight is None or flight.generation != generation:
            flight = _Flight(asyncio.create_task(self._load(url, generation), name=f"ls-remote:{url[:40]}"),
                             generation)
            flight.task.add_done_callback(_retrieve)
            self._flights[url] = flight
        return await asyncio.shield(flight.task)

    def invalidate(self, url: str) -> None:
        """Forget what is known about `url`; the next `get` asks the server."""
        self._generations[url] = self._generations.get(url, 0) + 1
        self._answers.pop(url, None)

    async def _load(self, url: str, generation: int) -> Refs:
        try:
            refs = await self._ls_remote(url)
        except Exception as exc:  # every failure is shared with the callers waiting on this flight
            self._settle(url, generation, _Answer(None, exc, self._clock()))
            raise
        self._settle(url, generation, _Answer(refs, None, self._clock()))
        return refs

    def _settle(self, url: str, generation: int, answer: _Answer) -> None:
        flight = self._flights.get(url)
        if flight is not None and flight.generation == generation:
            del self._flights[url]
        if self._generations.get(url, 0) == generation:
            self._answers[url] = answer


def _retrieve(task: asyncio.Task[Refs]) -> None:
    # A flight whose callers were all cancelled must not log "exception never retrieved".
    if not task.cancelled():
        task.exception()
