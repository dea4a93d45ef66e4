"""Leader election on a `coordination.k8s.io/v1` Lease: only the leader reconciles and writes.

client-go's algorithm, with its default timings (lease 15 s, renew deadline 10 s,
retry 2 s), over plain GET / POST / PUT of one Lease through `KubeClient.request`:

- A candidate GETs the Lease. Absent: it creates it naming itself. Held by another
  identity: it waits until it has seen the same record, unchanged, for the record's
  `leaseDurationSeconds` — measured on its own monotonic clock from when it first saw
  that record, never by comparing the holder's timestamps with its own clock. Free or
  expired: it PUTs itself in as holder with the `resourceVersion` it read, so of two
  candidates racing, the API server lets exactly one win (the other gets 409).
- The leader renews every retry period. When it has not renewed for the renew deadline
  it stops leading; followers need the longer lease duration before taking over, so
  there is a margin of (lease - renew deadline) in which nobody writes.
- On a clean shutdown the leader releases the Lease (holder empty, 1 s duration), so a
  follower takes over after one retry period instead of a whole lease.

Writes are gated twice: `is_leader` is false as soon as the last successful renewal is
older than the renew deadline (even if this task was starved and has not noticed yet),
and the KubeClient refuses applies and deletes while it is false; on losing the lease
the controller's loops are cancelled, in-flight syncs included.

Why not kubernetes-asyncio's `leaderelection`: it returns after the first loss instead
of campaigning again, measures expiry on the wall clock, never releases the lease, and
talks to the API through its own client, outside our request metrics, rate limit and
error mapping. One Lease needs three REST calls; they are written here.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import quote

from agent.config import LeaderElectionSettings
from agent.errors import AgentError, KubeConflict, KubeError, KubeNotFound, KubeUnreachable
from agent.tasks import TaskSet

log = logging.getLogger(__name__)

JITTER = 0.2  # a retry waits retry_period * (1 + up to 20%), as client-go's wait.JitterUntil
RELEASED_LEASE_SECONDS = 1


def lease_identity() -> str:
    """This process's identity in the Lease: the hostname (the pod name in a pod) and a random suffix."""
    return f"{socket.gethostname()}_{secrets.token_hex(4)}"


def micro_time(moment: datetime) -> str:
    """A Kubernetes MicroTime (RFC 3339 with microseconds, UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class LeaseRecord:
    """The election fields of a Lease's spec."""

    holder: str = ""
    lease_seconds: int = 0
    acquire_time: str = ""
    renew_time: str = ""
    transitions: int = 0

    @classmethod
    def of(cls, lease: dict[str, Any]) -> LeaseRecord:
        spec = lease.get("spec") or {}
        return cls(str(spec.get("holderIdentity") or ""), int(spec.get("leaseDurationSeconds") or 0),
                   str(spec.get("acquireTime") or ""), str(spec.get("renewTime") or ""),
                   int(spec.get("leaseTransitions") or 0))

    def spec(self) -> dict[str, Any]:
        return {"holderIdentity": self.holder, "leaseDurationSeconds": self.lease_seconds,
                "acquireTime": self.acquire_time, "renewTime": self.renew_time, "leaseTransitions": self.transitions}

    def taken_by(self, identity: str, *, now: str, lease_seconds: int) -> LeaseRecord:
        """The record after `identity` acquires or renews it at `now`."""
        if self.holder == identity:
            return LeaseRecord(identity, lease_seconds, self.acquire_time or now, now, self.transitions)
        return LeaseRecord(identity, lease_seconds, now, now, self.transitions + 1)


class LeaseApi(Protocol):
    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
                      content_type: str = "application/json", kind: str = "") -> Any: ...


class Leadership(Protocol):
    """What the rest of the process asks about leadership."""

    @property
    def is_leader(self) -> bool: ...

    @property
    def settled(self) -> bool:
        """True while this replica knows whether it leads: its last look at the Lease got an answer."""
        ...

    def details(self) -> dict[str, Any]: ...


class SingleInstance:
    """No leader election (`leader_election = false`): this process leads from the start."""

    is_leader = True
    settled = True

    def __init__(self, *, on_started: Callable[[], None] | None = None) -> None:
        self._on_started = on_started

    def details(self) -> dict[str, Any]:
        return {"leader": True, "election": False}

    def start(self) -> None:
        if self._on_started is not None:
            self._on_started()

    async def stop_campaign(self) -> None:
        return None

    async def release(self) -> None:
        return None


class LeaderElector:
    """Campaigns for one Lease until stopped; calls `on_started` / `on_stopped` on each transition."""

    def __init__(self, kube: LeaseApi, settings: LeaderElectionSettings, *, namespace: str, identity: str,
                 on_started: Callable[[], None], on_stopped: Callable[[], Awaitable[None]],
                 observer: Callable[[bool], None] | None = None, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 jitter: Callable[[], float] = random.random) -> None:
        self._kube, self.settings = kube, settings
        self.namespace, self.identity = namespace, identity
        self._on_started, self._on_stopped, self._observer = on_started, on_stopped, observer
        self._clock, self._wall, self._sleep, self._jitter = clock, wall, sleep, jitter
        self._path = (f"/apis/coordination.k8s.io/v1/namespaces/{quote(namespace, safe='')}/leases/"
                      f"{quote(settings.name, safe='')}")
        self._leading = False
        self._renewed_at = -math.inf
        self._observed: LeaseRecord | None = None
        self._observed_at = -math.inf
        self._last_problem = ""
        self._tasks = TaskSet()
        self.settled = False

    @property
    def lease(self) -> str:
        return f"{self.namespace}/{self.settings.name}"

    @property
    def is_leader(self) -> bool:
        """Leading, and renewed within the renew deadline: the gate every write checks."""
        return self._leading and self._clock() - self._renewed_at < self.settings.renew_deadline

    @property
    def holder(self) -> str:
        return self._observed.holder if self._observed else ""

    def details(self) -> dict[str, Any]:
        details = {"leader": self.is_leader, "election": True, "identity": self.identity, "holder": self.holder,
                   "lease": self.lease}
        if self._last_problem:
            details["error"] = self._last_problem
        return details

    # ------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self._tasks.spawn("leader-election", self.run())

    async def stop_campaign(self) -> None:
        """Stop acquiring and renewing (before draining); `release` then gives the Lease up."""
        await self._tasks.shutdown(grace=2.0)

    async def run(self) -> None:
        """Follow until the Lease is ours, lead until it is lost, and again, until cancelled."""
        log.info("leader election: campaigning for lease %s as %s", self.lease, self.identity)
        while True:
            await self._acquire()
            self._begin_leading()
            reason = await self._renew_until_lost()
            await self._end_leading(reason)

    async def release(self) -> None:
        """Give the Lease up when we hold it, so a follower takes over after one retry period."""
        was_leading, self._leading = self._leading, False
        try:
            lease = await self._kube.request("GET", self._path, kind="Lease")
            record = LeaseRecord.of(lease)
            if record.holder != self.identity:
                return
            now = micro_time(self._wall())
            released = LeaseRecord("", RELEASED_LEASE_SECONDS, now, now, record.transitions)
            await self._put(lease, released)
        except AgentError as exc:
            log.warning("leader election: could not release lease %s: %s", self.lease, exc)
            return
        if was_leading:
            self._notify(False)
        log.info("leader election: released lease %s", self.lease)

    # ------------------------------------------------------------- the loop

    async def _acquire(self) -> None:
        while not await self._attempt():
            await self._sleep(self.settings.retry_period * (1 + JITTER * self._jitter()))

    async def _renew_until_lost(self) -> str:
        """Renew every retry period; returns why leadership ended."""
        while True:
            await self._sleep(self.settings.retry_period)
            while True:
                remaining = self._renewed_at + self.settings.renew_deadline - self._clock()
                if remaining <= 0:
                    return f"not renewed within {self.settings.renew_deadline:g}s"
                try:
                    renewed = await asyncio.wait_for(self._attempt(), timeout=remaining)
                except TimeoutError:
                    continue
                if renewed:
                    break
                if self.holder and self.holder != self.identity:
                    return f"lease taken by {self.holder}"
                await self._sleep(min(self.settings.retry_period, max(remaining, 0.0)))

    def _begin_leading(self) -> None:
        self._leading = True
        log.info("leader election: became the leader (lease %s, identity %s)", self.lease, self.identity)
        self._notify(True)
        self._on_started()

    async def _end_leading(self, reason: str) -> None:
        self._leading = False  # closes the write gate before anything else runs
        log.warning("leader election: lost the lease %s: %s; writes stopped, following", self.lease, reason)
        self._notify(False)
        await self._on_stopped()

    def _notify(self, leading: bool) -> None:
        if self._observer is not None:
            self._observer(leading)

    # ------------------------------------------------------------- one attempt

    async def _attempt(self) -> bool:
        """One try to acquire or renew; True when we hold the Lease afterwards.

        The clock is read before anything is sent: a renewal counts from then, not from when its
        answer arrived, so a slow answer cannot eat the margin between renew deadline and lease.
        """
        started = self._clock()
        try:
            lease = await self._kube.request("GET", self._path, kind="Lease")
            record = LeaseRecord.of(lease)
        except KubeNotFound:
            return await self._create(started)
        except (KubeError, KubeUnreachable) as exc:
            return self._problem(f"cannot read lease {self.lease}: {exc}")
        except (TypeError, ValueError) as exc:  # someone wrote nonsense into the spec
            return self._problem(f"lease {self.lease} is malformed: {exc}")
        self._observe(record)
        if record.holder and record.holder != self.identity and not self._expired(record):
            self._last_problem = ""  # a clear answer: someone else leads
            return False
        now = micro_time(self._wall())
        taken = record.taken_by(self.identity, now=now, lease_seconds=math.ceil(self.settings.lease_duration))
        try:
            updated = await self._put(lease, taken)
        except KubeConflict:
            return False  # another candidate (or the holder renewing) changed it first
        except (KubeError, KubeUnreachable) as exc:
            return self._problem(f"cannot update lease {self.lease}: {exc}")
        return self._held(LeaseRecord.of(updated), started)

    async def _create(self, started: float) -> bool:
        now = micro_time(self._wall())
        record = LeaseRecord(self.identity, math.ceil(self.settings.lease_duration), now, now, 0)
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.settings.name, "namespace": self.namespace}, "spec": record.spec()}
        try:
            created = await self._kube.request("POST", self._path.rpartition("/")[0], body=body, kind="Lease")
        except KubeConflict:
            return False  # someone created it first
        except (KubeError, KubeUnreachable) as exc:
            return self._problem(f"cannot create lease {self.lease}: {exc}")
        return self._held(LeaseRecord.of(created), started)

    async def _put(self, lease: dict[str, Any], record: LeaseRecord) -> dict[str, Any]:
        meta = lease.get("metadata") or {}
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.settings.name, "namespace": self.namespace,
                             "resourceVersion": meta.get("resourceVersion", "")},
                "spec": record.spec()}
        updated: dict[str, Any] = await self._kube.request("PUT", self._path, body=body, kind="Lease")
        return updated

    def _held(self, record: LeaseRecord, sent_at: float) -> bool:
        self._observe(record)
        self._renewed_at = sent_at
        self._last_problem = ""
        return True

    def _observe(self, record: LeaseRecord) -> None:
        """Remember when the record last changed, on our own clock."""
        previous = self._observed
        if previous is None or (previous.holder, previous.renew_time) != (record.holder, record.renew_time):
            self._observed_at = self._clock()
            if record.holder and record.holder != self.identity and (previous is None
                                                                      or previous.holder != record.holder):
                log.info("leader election: lease %s is held by %s; following", self.lease, record.holder)
        self._observed = record
        self.settled = True

    def _expired(self, record: LeaseRecord) -> bool:
        return self._clock() >= self._observed_at + record.lease_seconds

    def _problem(self, message: str) -> bool:
        """Not settled: this replica cannot tell who leads (readiness fails, with `message`)."""
        self.settled = False
        if message != self._last_problem:  # a lasting problem (403, unreachable) is logged once, not every 2 s
            log.error("leader election: %s", message)
            self._last_problem = message
        return False
