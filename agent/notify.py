"""The systemd notify protocol, spoken directly: one datagram per message to `$NOTIFY_SOCKET`.

    READY=1       once every application has been reconciled (or this replica follows a leader)
    STATUS=…      a one-line summary, sent whenever it changes
    WATCHDOG=1    every `$WATCHDOG_USEC / 2`, from a task on the event loop: a blocked loop sends none
    RELOADING=1   on SIGHUP (with MONOTONIC_USEC), then READY=1 again once the reload is over
    STOPPING=1    on SIGTERM or SIGINT

No socket (not started by systemd): nothing is sent. A socket that cannot be reached
is logged once and the agent runs on; systemd then restarts it if the unit has a
watchdog, which is the point of one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterable, MutableMapping

from agent.leader import Leadership
from agent.model import AppStatus, HealthStatus

log = logging.getLogger(__name__)

TICK = 1.0  # how often readiness and the status line are looked at


class Notifier:
    def __init__(self, address: str = "", *, watchdog_interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.address = address
        self.watchdog_interval = watchdog_interval
        self._clock = clock
        self._target = "\0" + address[1:] if address.startswith("@") else address  # '@': abstract namespace
        self._failures: set[str] = set()
        self.ready_sent = False
        self._status = ""

    @classmethod
    def from_environment(cls, environ: MutableMapping[str, str] | None = None, *, pid: int | None = None) -> Notifier:
        """Read and remove NOTIFY_SOCKET and the watchdog variables, so kustomize and ssh do not inherit them."""
        environ = os.environ if environ is None else environ
        address = environ.pop("NOTIFY_SOCKET", "")
        usec, watchdog_pid = environ.pop("WATCHDOG_USEC", ""), environ.pop("WATCHDOG_PID", "")
        interval = None
        if usec.isdigit() and int(usec) > 0 and watchdog_pid in ("", str(os.getpid() if pid is None else pid)):
            interval = int(usec) / 2 / 1_000_000
        return cls(address, watchdog_interval=interval)

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *fields: str) -> bool:
        """Send one message (fields joined by newlines); False when it could not be delivered."""
        if not self.address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.setblocking(False)
                sock.sendto("\n".join(fields).encode(), self._target)
        except OSError as exc:
            problem = exc.strerror or type(exc).__name__
            if problem not in self._failures:
                self._failures.add(problem)
                log.warning("NOTIFY_SOCKET %s: cannot send to it (%s); systemd will not see readiness, status or "
                            "watchdog pings; the agent keeps running", self.address, problem)
            return False
        return True

    # ------------------------------------------------------------- messages

    def ready(self, status: str) -> None:
        self.ready_sent = True
        self._status = status
        self.send("READY=1", f"STATUS={status}")
        log.info("ready: %s", status)

    def status(self, status: str) -> None:
        if status != self._status:
            self._status = status
            self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        """SIGHUP: the configuration is being read again; `reloaded` follows."""
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                  "STATUS=reloading the configuration")

    def reloaded(self) -> None:
        """The reload is over (taken or refused): ready again, as before it."""
        if self.ready_sent:
            self.send("READY=1", f"STATUS={self._status}")
        else:
            self.send(f"STATUS={self._status}")

    def stopping(self) -> None:
        self.send("STOPPING=1", "STATUS=stopping: draining in-flight reconciles")

    # ------------------------------------------------------------- the loop

    async def run(self, *, is_ready: Callable[[], bool], status: Callable[[], str], tick: float = TICK) -> None:
        """READY once `is_ready()`, STATUS when `status()` changes, WATCHDOG every interval; until cancelled."""
        if not self.enabled:
            return
        next_ping = self._clock()
        step = min(tick, self.watchdog_interval) if self.watchdog_interval else tick
        while True:
            if not self.ready_sent and is_ready():
                self.ready(status())
            else:
                self.status(status())
            if self.watchdog_interval and self._clock() >= next_ping:
                self.watchdog()
                next_ping = self._clock() + self.watchdog_interval
            await asyncio.sleep(step)


def status_line(statuses: Iterable[AppStatus], leadership: Leadership) -> str:
    """`leader; 3 applications: 2 Synced, 1 OutOfSync; 1 Degraded` and the like, for STATUS=."""
    statuses = list(statuses)
    details = leadership.details()
    if leadership.is_leader:
        role = "leader"
    elif not leadership.settled:
        role = "starting"
    else:
        role = f"following {details.get('holder') or 'nobody yet'}"
    pending = sum(1 for s in statuses if s.reconciled_at is None)
    sync = Counter(s.sync_status.value for s in statuses if s.reconciled_at is not None)
    parts = [f"{count} {name}" for name, count in sorted(sync.items())]
    if pending:
        parts.append(f"{pending} not yet reconciled")
    line = f"{role}; {len(statuses)} applications" + (f": {', '.join(parts)}" if parts else "")
    unhealthy = Counter(s.health_status.value for s in statuses
                        if s.reconciled_at is not None and s.health_status is not HealthStatus.HEALTHY)
    if unhealthy:
        line += "; " + ", ".join(f"{count} {name}" for name, count in sorted(unhealthy.items()))
    return line
