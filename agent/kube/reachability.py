"""Whether one cluster answers, as its client's requests show: a circuit breaker.

A request that gets no answer at all (connection refused or reset, TLS failure, timeout)
marks the cluster *down*; any HTTP answer, even an error status, marks it up again. While
it is down, reconciles of its apps fail at once with the last error instead of each
waiting for its own timeout while holding a reconcile slot, and one probe (the registry's)
asks the server again with backoff. Transitions are logged once each, not per request.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from agent.errors import KubeUnreachable

log = logging.getLogger(__name__)

Transition = Callable[[bool], None]  # called with True when the cluster answers again, False when it stops


class Reachability:
    def __init__(self, cluster: str, *, clock: Callable[[], float] = time.monotonic,
                 on_change: Transition | None = None) -> None:
        self.cluster = cluster
        self._clock = clock
        self._on_change = on_change
        self.error = ""  # why it is down (the last failed request's error)
        self.down_since: float | None = None
        self._down = asyncio.Event()  # set while down: the probe waits for it

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def answered(self) -> None:
        """The server answered a request (any status)."""
        if self.down_since is None:
            return
        outage = self._clock() - self.down_since
        self.down_since, self.error = None, ""
        self._down.clear()
        log.info("cluster %s answers again after %.1fs", self.cluster, outage)
        if self._on_change is not None:
            self._on_change(True)

    def unreachable(self, error: str) -> None:
        """A request got no answer; `error` says why (it names the server, never a credential)."""
        self.error = error
        if self.down_since is not None:
            return
        self.down_since = self._clock()
        self._down.set()
        log.warning("cluster %s is unreachable: %s; its applications are Unknown until it answers", self.cluster,
                    error)
        if self._on_change is not None:
            self._on_change(False)

    def check(self) -> None:
        """Raise KubeUnreachable at once while the cluster is down (the same message every time, so an
        app's status does not change while nothing does)."""
        if self.down_since is not None:
            raise KubeUnreachable(f"cluster {self.cluster} is unreachable: {self.error}")

    async def wait_down(self) -> None:
        await self._down.wait()
