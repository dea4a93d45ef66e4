"""Which replica owns which app: fixed buckets, rendezvous hashing, and each round's claims. Pure.

    bucket_of(app)                          the app's bucket, fixed by its name alone
    preferred(bucket, alive)                the live member rendezvous hashing gives the bucket
    decide(table, me=, alive=, dead=, held=, claiming=)
                                            what this replica claims, releases and has lost

Apps are hashed into BUCKETS buckets; buckets, not apps, have owners. The owner of each
bucket is recorded in one table (agent.shard.table) that every replica reads and writes
with optimistic concurrency. A bucket's *preferred* owner is the live member with the
highest rendezvous weight for it, so when a member joins or leaves only the buckets it
gains or held move: an app moves only when membership changes.

A replica claims a bucket only when it is its preferred owner and the bucket is free, or
its recorded owner is dead (its member Lease unchanged for the lease duration on the
claimant's clock). A live owner is never displaced: it releases a bucket itself (after its
loops for the bucket's apps have stopped) once another live member is preferred, and the
preferred member claims it when it sees it free.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass

BUCKETS = 64  # enough to spread apps over a handful of replicas; each bucket's state is one ConfigMap


def bucket_of(app: str) -> int:
    """The app's bucket: a stable hash of its name (the same in every replica and every version)."""
    return int.from_bytes(hashlib.sha256(app.encode()).digest()[:8], "big") % BUCKETS


def _weight(bucket: int, member: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{bucket}/{member}".encode()).digest()[:8], "big")


def preferred(bucket: int, alive: Collection[str]) -> str:
    """The member rendezvous hashing prefers for `bucket` ("" when no member is alive)."""
    if not alive:
        return ""
    return max(alive, key=lambda member: (_weight(bucket, member), member))


@dataclass(frozen=True)
class OwnerTable:
    """bucket → owner identity ("" for a free bucket), and a revision every write increments (so no
    write is ever a no-op the API server would skip: every claim moves the resourceVersion)."""

    owners: tuple[str, ...] = ("",) * BUCKETS
    revision: int = 0

    def owner(self, bucket: int) -> str:
        return self.owners[bucket]

    def buckets_of(self, member: str) -> frozenset[int]:
        return frozenset(bucket for bucket, owner in enumerate(self.owners) if owner == member)

    def changed(self, *, me: str, claims: Iterable[int], releases: Iterable[int]) -> OwnerTable:
        owners = list(self.owners)
        for bucket in releases:
            owners[bucket] = ""
        for bucket in claims:
            owners[bucket] = me
        return OwnerTable(tuple(owners), self.revision + 1)


@dataclass(frozen=True)
class RoundDecision:
    claims: frozenset[int] = frozenset()  # to be recorded as ours (free, a dead owner's, or ours again)
    releases: frozenset[int] = frozenset()  # to be recorded as free, once their apps have stopped here
    lost: frozenset[int] = frozenset()  # held here, but the table names someone else: stop at once

    @property
    def writes(self) -> bool:
        return bool(self.claims or self.releases)


def decide(table: OwnerTable, *, me: str, alive: Collection[str], dead: Collection[str], held: Collection[int],
           claiming: bool) -> RoundDecision:
    """One round of ownership for replica `me`.

    `alive`: the members seen renewing (`me` among them only while its own Lease is fresh);
    `dead`: owners whose Lease expired, or was missing for the lease duration, as this replica
    observed; an owner in neither is in doubt and keeps its buckets. `held`: the buckets this
    replica owns now (claimed while its Lease stayed fresh). `claiming`: false while stopping.
    """
    claims: set[int] = set()
    releases: set[int] = set()
    lost: set[int] = set()
    for bucket, owner in enumerate(table.owners):
        target = preferred(bucket, alive)
        mine_now = bucket in held
        if owner == me:
            if mine_now and target not in ("", me):
                releases.add(bucket)  # another live member is preferred: hand it over
            elif not mine_now:
                # Recorded as ours, but our claim lapsed (our Lease was not renewed in time):
                # claim again, which moves the table's version past any claim made meanwhile.
                (claims if claiming and target == me else releases).add(bucket)
        elif mine_now:
            lost.add(bucket)  # someone else recorded it: never write for it again
        elif claiming and target == me and (owner == "" or owner in dead):
            claims.add(bucket)
    return RoundDecision(frozenset(claims), frozenset(releases), frozenset(lost))
