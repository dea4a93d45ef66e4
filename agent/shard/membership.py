"""This replica's member Lease: created, renewed every retry period, deleted on a clean stop.

The Lease (`<sharding_name>-member-<identity>` in leader election's namespace, labelled
`gitops-agent.io/member-of: <sharding_name>`) carries the replica's identity as holder and
its API address in an annotation. Renewal follows leader.py's rules: the clock is read
before a renewal is sent, an attempt is abandoned when the renew deadline would pass before
its answer, and the replica counts as *fresh* only while its last successful renewal is
younger than the renew deadline. Every moment it is not fresh begins a new *epoch*: what
it owned before is void (agent.shard.coordinator) and must be claimed again in the owner
table, so a replica that was cut off never resumes writing on an old claim.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from agent.config import LeaderElectionSettings
from agent.errors import KubeConflict, KubeError, KubeNotFound, KubeUnreachable
from agent.leader import LeaseApi, micro_time
from agent.shard.members import ADDRESS_ANNOTATION, MEMBER_LABEL, MemberRecord

log = logging.getLogger(__name__)

LEASES = "/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"


def member_lease_name(prefix: str, identity: str) -> str:
    """A DNS-1123 name for the identity's Lease (hostnames may hold dots and capitals)."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", identity.lower()).strip("-")
    return f"{prefix}-member-{cleaned}"[:253].rstrip("-")


class Membership:
    def __init__(self, kube: LeaseApi, settings: LeaderElectionSettings, *, namespace: str, prefix: str,
                 identity: str, address: str, clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._kube, self.settings = kube, settings
        self.namespace, self.prefix, self.identity, self.address = namespace, prefix, identity, address
        self._clock, self._wall = clock, wall
        self.name = member_lease_name(prefix, identity)
        self.collection = LEASES.format(namespace=quote(namespace, safe=""))
        self._lease: dict[str, Any] | None = None
        self._renewed_at = -math.inf
        self.epoch = 0  # moves on every lapse: claims of an older epoch are void
        self.problem = ""

    @property
    def fresh(self) -> bool:
        """Renewed within the renew deadline: the first condition of every write."""
        return self._clock() - self._renewed_at < self.settings.renew_deadline

    @property
    def selector(self) -> str:
        return f"{MEMBER_LABEL}={self.prefix}"

    def remaining(self) -> float:
        return self._renewed_at + self.settings.renew_deadline - self._clock()

    async def renew(self) -> bool:
        """One renewal (or the creation); True when the Lease is ours and fresh afterwards. An
        attempt is cut off when the renew deadline passes: a late answer must not count."""
        was_fresh = self.fresh
        started = self._clock()
        try:
            if was_fresh:
                async with asyncio.timeout(max(self.remaining(), 0.001)):
                    lease = await self._write()
            else:
                lease = await self._write()
        except TimeoutError:
            return self._failed("renewal not answered before the renew deadline")
        except (KubeError, KubeUnreachable) as exc:
            return self._failed(f"cannot renew member lease {self.namespace}/{self.name}: {exc}")
        if not was_fresh:
            self.epoch += 1  # a lapse (or the first renewal): nothing claimed before holds
        self._lease, self._renewed_at, self.problem = lease, started, ""
        return True

    def _failed(self, problem: str) -> bool:
        if problem != self.problem:
            log.error("sharding: %s", problem)
        self.problem = problem
        return False

    async def _write(self) -> dict[str, Any]:
        body = self._body(micro_time(self._wall()))
        if self._lease is not None:
            body["metadata"]["resourceVersion"] = (self._lease.get("metadata") or {}).get("resourceVersion", "")
            try:
                return dict(await self._kube.request("PUT", f"{self.collection}/{self.name}", body=body,
                                                     kind="Lease"))
            except KubeConflict:  # written by someone else (a person?): take it back from its current version
                current = await self._kube.request("GET", f"{self.collection}/{self.name}", kind="Lease")
                body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion", "")
                return dict(await self._kube.request("PUT", f"{self.collection}/{self.name}", body=body,
                                                     kind="Lease"))
            except KubeNotFound:
                self._lease = None
        try:
            return dict(await self._kube.request("POST", self.collection, body=body, kind="Lease"))
        except KubeConflict:  # left from before (the same identity cannot run twice): take it over
            current = await self._kube.request("GET", f"{self.collection}/{self.name}", kind="Lease")
            body["metadata"]["resourceVersion"] = (current.get("metadata") or {}).get("resourceVersion", "")
            return dict(await self._kube.request("PUT", f"{self.collection}/{self.name}", body=body, kind="Lease"))

    def _body(self, now: str) -> dict[str, Any]:
        acquired = ((self._lease or {}).get("spec") or {}).get("acquireTime") or now
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace,
                             "labels": {MEMBER_LABEL: self.prefix},
                             "annotations": {ADDRESS_ANNOTATION: self.address}},
                "spec": {"holderIdentity": self.identity,
                         "leaseDurationSeconds": math.ceil(self.settings.lease_duration),
                         "acquireTime": acquired, "renewTime": now}}

    async def members(self) -> list[MemberRecord]:
        """Every member Lease (one labelled LIST)."""
        listing = await self._kube.request("GET", self.collection, query={"labelSelector": self.selector},
                                           kind="Lease")
        return [MemberRecord.of(item) for item in listing.get("items") or []]

    async def collect(self, record: MemberRecord) -> None:
        """Delete a long-dead member's Lease, only in the version seen (a renewal since keeps it)."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions",
                "preconditions": {"resourceVersion": record.resource_version}}
        try:
            await self._kube.request("DELETE", f"{self.collection}/{record.name}", body=body, kind="Lease")
            log.info("sharding: deleted the lease of member %s, unchanged for a long time", record.identity)
        except (KubeNotFound, KubeConflict):
            pass

    async def leave(self) -> None:
        """Delete our Lease (a clean stop): the others stop counting us at their next round."""
        self._renewed_at = -math.inf
        try:
            await self._kube.request("DELETE", f"{self.collection}/{self.name}", kind="Lease")
        except KubeNotFound:
            pass
        except (KubeError, KubeUnreachable) as exc:
            log.warning("sharding: could not delete member lease %s/%s: %s", self.namespace, self.name, exc)
