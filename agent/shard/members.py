"""Who is a member, alive or dead, judged as leader election judges a Lease. Pure (the clock is given).

Each replica renews a member Lease of its own (agent.shard.membership); every replica lists
them all every round. A member is *alive* while its record (holder, renewTime, duration)
changed within its `leaseDurationSeconds`, measured on the observer's own monotonic clock
from the moment it first saw that record — clocks of different machines are never compared.
An owner is *dead* once its record stayed unchanged for that long, or was released (no
holder), or its Lease has been missing for the configured lease duration (a replica that
never saw it waits that long too). Anything else is in doubt: not a target for new buckets,
and not to be taken from.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ADDRESS_ANNOTATION = "gitops-agent.io/address"
MEMBER_LABEL = "gitops-agent.io/member-of"
GC_AFTER_LEASES = 20  # a member Lease unchanged for this many lease durations is deleted (left by a kill -9)


@dataclass(frozen=True)
class MemberRecord:
    """One member Lease as listed."""

    name: str  # the Lease object's name
    identity: str  # spec.holderIdentity; "" once released
    address: str  # where its API answers (the address annotation)
    renew_time: str
    lease_seconds: int
    resource_version: str = ""

    @classmethod
    def of(cls, lease: Mapping[str, Any]) -> MemberRecord:
        meta, spec = lease.get("metadata") or {}, lease.get("spec") or {}
        return cls(name=str(meta.get("name") or ""), identity=str(spec.get("holderIdentity") or ""),
                   address=str((meta.get("annotations") or {}).get(ADDRESS_ANNOTATION) or ""),
                   renew_time=str(spec.get("renewTime") or ""),
                   lease_seconds=int(spec.get("leaseDurationSeconds") or 0),
                   resource_version=str(meta.get("resourceVersion") or ""))

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.identity, self.renew_time, self.lease_seconds)


class MemberView:
    """What this replica has observed of every member Lease, on its own clock."""

    def __init__(self, *, lease_duration: float) -> None:
        self._lease_duration = lease_duration
        self._records: dict[str, MemberRecord] = {}  # by Lease name
        self._changed_at: dict[str, float] = {}  # by Lease name: when its record last changed, for us
        self._missing_since: dict[str, float] = {}  # by identity: referenced, but no Lease of it listed

    def observe(self, records: Iterable[MemberRecord], *, referenced: Iterable[str], now: float) -> None:
        """A successful listing of the member Leases; `referenced`: identities the owner table names."""
        listed = {record.name: record for record in records}
        for name, record in listed.items():
            previous = self._records.get(name)
            if previous is None or previous.key != record.key:
                self._changed_at[name] = now
        for name in set(self._records) - set(listed):
            self._changed_at.pop(name, None)
        self._records = listed
        present = {record.identity for record in listed.values() if record.identity}
        for identity in set(referenced) - present:
            self._missing_since.setdefault(identity, now)
        for identity in set(self._missing_since) & present:
            del self._missing_since[identity]

    def alive(self, now: float) -> dict[str, str]:
        """identity → address of every member seen renewing within its lease duration."""
        return {record.identity: record.address for name, record in self._records.items()
                if record.identity and now < self._changed_at[name] + record.lease_seconds}

    def is_dead(self, identity: str, now: float) -> bool:
        for name, record in self._records.items():
            if record.identity == identity:
                return now >= self._changed_at[name] + record.lease_seconds
        since = self._missing_since.get(identity)
        return since is not None and now >= since + self._lease_duration

    def dead(self, identities: Iterable[str], now: float) -> frozenset[str]:
        return frozenset(identity for identity in identities if identity and self.is_dead(identity, now))

    def collectable(self, now: float, *, me: str) -> list[MemberRecord]:
        """Leases of members long gone (a kill -9 leaves its Lease behind): to be deleted."""
        return [record for name, record in self._records.items()
                if record.identity != me and now >= self._changed_at[name] + GC_AFTER_LEASES * max(
                    record.lease_seconds, self._lease_duration)]
