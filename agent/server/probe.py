"""The checks behind /readyz, shared: one round of requests per second however often it is asked.

Every /readyz call used to cost one API request through the same token bucket as
reconciles; 1,500 concurrent calls queued for minutes behind it. Now callers within a
second share one answer, and callers while a check is in flight wait for that one. The
API-server check and the per-cluster reachability check are shared the same way.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")
KubeCheck = Callable[[], Awaitable[str]]
ClusterCheck = Callable[[], Awaitable[dict[str, dict[str, Any]]]]
PROBE_TTL = 1.0  # seconds an answer (or a failure) is shared


class SharedProbe(Generic[T]):
    """Single-flight, briefly cached `check()`; a failure is shared the same way as an answer."""

    def __init__(self, check: Callable[[], Awaitable[T]], *, ttl: float = PROBE_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._check, self._ttl, self._clock = check, ttl, clock
        self._last: asyncio.Task[T] | None = None
        self._last_done = -float("inf")
        self.checks = 0  # checks actually run (tests read it)

    async def __call__(self) -> T:
        last = self._last
        if last is None or (last.done() and self._clock() - self._last_done >= self._ttl):
            last = self._last = asyncio.ensure_future(self._run())
            last.add_done_callback(_retrieved)  # its callers may all have gone: no "never retrieved" noise
        # Shielded: a caller that goes away (a closed connection) must not cancel the others' answer.
        return await asyncio.shield(last)

    async def _run(self) -> T:
        self.checks += 1
        try:
            return await self._check()
        finally:
            self._last_done = self._clock()


def _retrieved(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
