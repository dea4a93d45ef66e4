"""RefCache: one ls-remote per repository per TTL, shared by concurrent callers, dropped on invalidate.

The ls-remote here is a counting coroutine and the clock is injected; the real
git server is exercised in tests/integration/test_git_*.py.
"""

from __future__ import annotations

import asyncio

import pytest

from agent.errors import SourceError
from agent.source.resolver import RefCache, Refs


class CountingRemote:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.release = asyncio.Event()
        self.release.set()
        self.sha = b"a" * 40
        self.fail = False

    async def __call__(self, url: str) -> Refs:
        self.calls.append(url)
        await self.release.wait()
        if self.fail:
            raise SourceError(f"{url}: ls-remote failed: unreachable")
        return {b"refs/heads/main": self.sha}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_callers_share_one_ls_remote() -> None:
    remote, clock = CountingRemote(), Clock()
    cache = RefCache(remote, ttl=60, clock=clock)
    remote.release.clear()
    waiting = [asyncio.create_task(cache.get("u")) for _ in range(100)]
    await asyncio.sleep(0)
    remote.release.set()
    results = await asyncio.gather(*waiting)
    assert remote.calls == ["u"]
    assert all(r == {b"refs/heads/main": b"a" * 40} for r in results)


async def test_answer_is_reused_until_the_ttl_passes() -> None:
    remote, clock = CountingRemote(), Clock()
    cache = RefCache(remote, ttl=60, clock=clock)
    await cache.get("u")
    clock.now += 59
    await cache.get("u")
    assert len(remote.calls) == 1
    clock.now += 2
    await cache.get("u")
    assert len(remote.calls) == 2
    await cache.get("other")
    assert remote.calls == ["u", "u", "other"]


async def test_invalidate_forces_a_new_ls_remote_even_while_one_is_in_flight() -> None:
    remote, clock = CountingRemote(), Clock()
    cache = RefCache(remote, ttl=60, clock=clock)
    remote.release.clear()
    stale = asyncio.create_task(cache.get("u"))
    await asyncio.sleep(0)
    cache.invalidate("u")  # a push arrived while the old answer was on its way
    remote.sha = b"b" * 40
    fresh = asyncio.create_task(cache.get("u"))
    await asyncio.sleep(0)
    remote.release.set()
    await stale
    assert (await fresh)[b"refs/heads/main"] == b"b" * 40
    assert len(remote.calls) == 2
    assert (await cache.get("u"))[b"refs/heads/main"] == b"b" * 40
    assert len(remote.calls) == 2


async def test_a_failure_is_shared_briefly_then_retried() -> None:
    remote, clock = CountingRemote(), Clock()
    cache = RefCache(remote, ttl=60, clock=clock)
    remote.fail = True
    for _ in range(3):
        with pytest.raises(SourceError, match="unreachable"):
            await cache.get("u")
    assert len(remote.calls) == 1
    clock.now += 3
    remote.fail = False
    assert await cache.get("u")
    assert len(remote.calls) == 2


async def test_a_cancelled_caller_does_not_cancel_the_shared_ls_remote() -> None:
    remote, clock = CountingRemote(), Clock()
    cache = RefCache(remote, ttl=60, clock=clock)
    remote.release.clear()
    first = asyncio.create_task(cache.get("u"))
    second = asyncio.create_task(cache.get("u"))
    await asyncio.sleep(0)
    first.cancel()
    remote.release.set()
    assert await second
    assert len(remote.calls) == 1
