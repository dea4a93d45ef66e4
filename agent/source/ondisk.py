"""A repository's cache directory as the git source holds it: its handles, a reader/writer lock
(exports side by side, a fetch or a removal alone), and the commits recently seen in it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from agent.model import Revision
from agent.source import cache

T = TypeVar("T")
P = ParamSpec("P")
RECENT_COMMITS = 1024


class ReadWriteLock:
    """Many readers or one writer; a waiting writer keeps new readers out."""

    def __init__(self) -> None:
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0
        self._changed = asyncio.Condition()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[None]:
        async with self._changed:
            await self._changed.wait_for(lambda: not self._writer and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            async with self._changed:
                self._readers -= 1
                self._changed.notify_all()

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[None]:
        async with self._changed:
            self._writers_waiting += 1
            try:
                await self._changed.wait_for(lambda: not self._writer and not self._readers)
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            async with self._changed:
                self._writer = False
                self._changed.notify_all()


@dataclass
class OnDisk:
    """One cache directory; URLs that differ only in credentials share it, so they share this too."""

    handles: cache.RepoHandles
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)
    readers: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(cache.READERS))
    verified: bool = False
    # Recently seen commits (known to be in the cache: no need to open it to ask) and their
    # metadata (ref left empty); emptied past RECENT_COMMITS, so a busy repository does not grow them.
    commits: set[str] = field(default_factory=set)
    described: dict[str, Revision] = field(default_factory=dict)

    def know(self, sha: str, described: Revision | None = None) -> None:
        if len(self.commits) >= RECENT_COMMITS or len(self.described) >= RECENT_COMMITS:
            self.commits.clear()
            self.described.clear()
        self.commits.add(sha)
        if described is not None:
            self.described[sha] = described

    async def read(self, reader: Callable[Concatenate[cache.RepoHandles, P], T], *args: P.args,
                   **kwargs: P.kwargs) -> T:
        """`reader(handles, ...)` in a worker thread, under the read lock, at most `cache.READERS` at once
        (the others wait here, not in a worker thread)."""
        async with self.lock.read(), self.readers:
            return await asyncio.to_thread(reader, self.handles, *args, **kwargs)

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[None]:
        """The write lock; handles kept for readers are closed after the write (they would miss its packs)."""
        async with self.lock.write():
            try:
                yield
            finally:
                self.handles.close()

    def forget(self) -> None:
        """The directory was removed: nothing known about it holds any more."""
        self.commits.clear()
        self.described.clear()
        self.handles.close(forget_objects=True)


@dataclass
class CachedRepo:
    url: str
    disk: OnDisk

    @property
    def path(self) -> Path:
        return self.disk.handles.path

    @property
    def verified(self) -> bool:
        return self.disk.verified

    @verified.setter
    def verified(self, value: bool) -> None:
        self.disk.verified = value
