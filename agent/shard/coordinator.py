"""Sharding, run: membership, the owner table, and which apps run here — and the write gate per app.

Two guarded tasks. `member-lease` renews this replica's Lease every retry period
(agent.shard.membership). `shard-rounds` runs a round every retry period: list the member
Leases, read the owner table, decide (agent.shard.buckets.decide), then act. The first retry
period only looks: replicas started together see each other before anyone claims, so the buckets
are spread at once instead of taken by the first and handed over.

- buckets recorded as someone else's while held here: their apps stop at once;
- buckets to hand over: their app loops are cancelled (in-flight syncs stop at their next
  await, as on losing the leader lease), their shared state is written, and only then are
  they recorded as free;
- buckets to claim: recorded as ours in one write over the version read (409: decide again
  next round); then each is read afresh from the shared state and its apps start, their
  inventories rebuilt from the cluster before anything is pruned (`ShardHost.take`).

Strict exclusion: a replica writes for an app only while (1) the app's bucket was claimed
by a successful write of the owner table, (2) in the current epoch of its member Lease (no
moment since the claim without a fresh Lease), and (3) its Lease is fresh now. Another
replica takes a bucket only from an owner it saw dead — its Lease unchanged for the lease
duration on the taker's clock, longer than the renew deadline after which the owner stops
writing — or after the owner released it. The gate (`may_write`) checks these on every
apply and delete, for the app whose reconcile sends it (agent.shard.acting).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from agent.errors import KubeConflict, KubeError, KubeUnreachable
from agent.shard.acting import acting_app
from agent.shard.buckets import OwnerTable, RoundDecision, bucket_of, decide
from agent.shard.members import MemberView
from agent.shard.membership import Membership
from agent.shard.shared import SharedState
from agent.shard.table import OwnerTableStore, TableError
from agent.tasks import TaskSet

log = logging.getLogger(__name__)

START_TIMEOUT = 10.0  # reading one claimed bucket's shared state gives up after this (tried again next round)


class ShardHost(Protocol):
    """The controller's side: run a bucket's apps here, or stop them."""

    async def take(self, buckets: dict[int, dict[str, bytes]]) -> None: ...

    async def give_up(self, bucket: int, why: str) -> None: ...


class ShardObserver(Protocol):
    def observe_shards(self, *, working: bool, buckets: int, members: int) -> None: ...


class ShardCoordinator:
    def __init__(self, *, membership: Membership, table: OwnerTableStore, shared: SharedState,
                 on_started: Callable[[], None] | None = None, observer: ShardObserver | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.membership, self._table_store, self.shared = membership, table, shared
        self._on_started, self._observer, self._clock = on_started, observer, clock
        self.identity = membership.identity
        self._view = MemberView(lease_duration=membership.settings.lease_duration)
        self._host: ShardHost | None = None
        self.table = OwnerTable()
        self._held: set[int] = set()  # claimed in epoch `_epoch`, by a successful write of the table
        self._active: set[int] = set()  # held, and their apps run here (shared state read)
        self._epoch = -1
        self._alive: dict[str, str] = {}  # identity → address, this replica included while fresh
        self._addresses: dict[str, str] = {}  # every member ever seen → its address
        self._claiming = True
        self._problem = ""
        self.rounds = 0
        self._looked_at: float | None = None  # when the first round listed the members
        self.settled = False
        self._renewal, self._rounds = TaskSet(), TaskSet()
        shared.holds = self.holds
        self._wake = asyncio.Event()

    def attach(self, host: ShardHost) -> None:
        self._host = host

    # ------------------------------------------------------------------ what the rest asks

    @property
    def is_leader(self) -> bool:
        """A working member (the name the lifecycle and the probes know from leader election)."""
        return self.membership.fresh and self.membership.epoch == self._epoch

    def holds(self, bucket: int) -> bool:
        """May write the bucket's shared state: held in the current epoch, Lease fresh."""
        return bucket in self._held and self.is_leader

    def owns(self, app: str) -> bool:
        """The app runs here and may be written for now."""
        return bucket_of(app) in self._active and self.holds(bucket_of(app))

    def runs(self, app: str) -> bool:
        """The app's loop belongs here (its bucket is active); `owns` adds the Lease's freshness."""
        return bucket_of(app) in self._active

    def may_write(self) -> bool:
        """The write gate: an apply or delete is sent only for an app this replica owns now."""
        app = acting_app()
        return app is not None and self.owns(app)

    def owner_of(self, app: str) -> str:
        """The replica recorded as the app's owner ("" while its bucket is free)."""
        bucket = bucket_of(app)
        return self.identity if bucket in self._active else self.table.owner(bucket)

    def address_of(self, identity: str) -> str:
        return self._addresses.get(identity, "")

    def alive(self, identity: str) -> bool:
        return identity in self._alive

    def peers(self) -> dict[str, str]:
        """identity → address of every other live member."""
        return {identity: address for identity, address in self._alive.items() if identity != self.identity}

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "sharding": True, "leader": self.is_leader, "identity": self.identity,
            "address": self.membership.address, "lease": f"{self.membership.namespace}/{self.membership.name}",
            "members": dict(sorted(self._alive.items())), "buckets": sorted(self._active),
            "free_buckets": sum(1 for owner in self.table.owners if not owner),
        }
        problem = self._problem or self.membership.problem
        if problem:
            details["error"] = problem
        return details

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._on_started is not None:
            self._on_started()  # the controller runs; its apps' loops start as their buckets are claimed
        self._renewal.spawn("member-lease", self._renew_forever())
        self._renewal.spawn("shared-state-writer", self.shared.run())
        self._rounds.spawn("shared-state-follow", self.shared.follow())
        self._rounds.spawn("shard-rounds", self._rounds_forever())

    async def stop_campaign(self) -> None:
        """Claim and hand over nothing more (stopping); the Lease is still renewed while the loops drain."""
        self._claiming = False
        await self._rounds.shutdown(grace=5.0)

    async def release(self) -> None:
        """A clean stop, after the app loops ended: write the shared state, record every bucket held
        as free (the others claim them at their next round), and delete the member Lease."""
        held = set(self._held)
        self._active.clear()
        await self.shared.flush(held)
        self._held.clear()
        for _ in range(3):
            try:
                read = await self._table_store.read()
                mine = read.table.buckets_of(self.identity)
                if mine:
                    await self._table_store.write(read.table.changed(me=self.identity, claims=(), releases=mine),
                                                  resource_version=read.resource_version)
                    log.info("sharding: released %d buckets", len(mine))
                break
            except KubeConflict:
                continue
            except (KubeError, KubeUnreachable, TableError) as exc:
                log.warning("sharding: could not release the buckets; they move once this member's lease "
                            "expires: %s", exc)
                break
        await self._renewal.shutdown(grace=2.0)
        await self.membership.leave()

    # ------------------------------------------------------------------ the tasks

    async def _renew_forever(self) -> None:
        settings = self.membership.settings
        while True:
            renewed = await self.membership.renew()
            if not renewed and self.membership.fresh:
                await asyncio.sleep(min(settings.retry_period, max(self.membership.remaining(), 0.0)) / 2)
                continue
            if renewed and self.membership.epoch != self._epoch:
                self._wake.set()  # a new epoch: claim again at once
            await asyncio.sleep(settings.retry_period)

    async def _rounds_forever(self) -> None:
        while True:
            self._wake.clear()
            await self._round()
            self.rounds += 1
            with_timeout = self.membership.settings.retry_period
            try:
                async with asyncio.timeout(with_timeout):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def _round(self) -> None:
        started = self._clock()
        try:
            records = await self.membership.members()
            read = await self._table_store.read()
        except (KubeError, KubeUnreachable, TableError) as exc:
            self._failed(f"cannot read the membership or the owner table: {exc}")
            return
        self._view.observe(records, referenced=set(read.table.owners) - {"", self.identity}, now=started)
        self._addresses.update({r.identity: r.address for r in records if r.identity and r.address})
        if self.membership.epoch != self._epoch:
            await self._drop(set(self._held), "this replica's lease lapsed")
            self._epoch = self.membership.epoch
        alive = self._view.alive(started)
        alive.pop(self.identity, None)
        if self.membership.fresh:
            alive[self.identity] = self.membership.address
        self._alive, self.table = alive, read.table
        if self._looked_at is None:
            self._looked_at = started
        looked = started - self._looked_at >= self.membership.settings.retry_period  # the first round only looks
        claiming = self._claiming and self.membership.fresh and looked
        decision = decide(read.table, me=self.identity, alive=alive, dead=self._view.dead(read.table.owners, started),
                          held=self._held, claiming=claiming)
        await self._act(decision, read.table, read.resource_version)
        await self._start_pending()
        for record in self._view.collectable(started, me=self.identity):
            await self.membership.collect(record)
        self._problem, self.settled = "", self.membership.fresh
        if self._observer is not None:
            self._observer.observe_shards(working=self.is_leader, buckets=len(self._active), members=len(alive))

    async def _act(self, decision: RoundDecision, table: OwnerTable, version: str) -> None:
        if decision.lost:
            await self._drop(decision.lost, "the owner table names another replica")
        handed = decision.releases & self._held
        if handed:
            await self._hand_over(handed)
        if not decision.writes or not self.membership.fresh:
            return
        epoch = self.membership.epoch
        changed = table.changed(me=self.identity, claims=decision.claims, releases=decision.releases)
        try:
            written = await self._table_store.write(changed, resource_version=version)
        except KubeConflict:
            return  # another replica wrote first: decide again on a fresh read
        except (KubeError, KubeUnreachable) as exc:
            self._failed(f"cannot write the owner table: {exc}")
            return
        self.table = written.table
        if self.membership.epoch == epoch and self.membership.fresh:
            self._held |= decision.claims
        if decision.claims or decision.releases:
            log.info("sharding: claimed %d buckets, released %d; %d held", len(decision.claims),
                     len(decision.releases), len(self._held),
                     extra={"claimed": sorted(decision.claims), "released": sorted(decision.releases)})

    async def _hand_over(self, buckets: Iterable[int]) -> None:
        """Stop the apps of buckets another member is preferred for; their state is written first."""
        for bucket in sorted(buckets):
            await self._stop(bucket, "application moved to another replica")
        await self.shared.flush(buckets)
        for bucket in buckets:
            self._held.discard(bucket)
            self.shared.drop(bucket)

    async def _drop(self, buckets: Iterable[int], why: str) -> None:
        buckets = set(buckets)
        if not buckets:
            return
        log.warning("sharding: %d buckets stop here: %s", len(buckets), why, extra={"buckets": sorted(buckets)})
        for bucket in sorted(buckets):
            self._held.discard(bucket)
            await self._stop(bucket, f"this replica stopped running the application: {why}")
            self.shared.drop(bucket)

    async def _stop(self, bucket: int, why: str) -> None:
        was_active = bucket in self._active
        self._active.discard(bucket)  # the gate closes for its apps before anything else
        if was_active and self._host is not None:
            await self._host.give_up(bucket, why)

    async def _start_pending(self) -> None:
        """Run the apps of the buckets held but not yet running, their shared state read first; all
        of one round's together (agent.controller.sharing)."""
        loaded: dict[int, dict[str, bytes]] = {}
        for bucket in sorted(self._held - self._active):
            try:
                async with asyncio.timeout(START_TIMEOUT):
                    loaded[bucket] = await self.shared.load(bucket)
            except (KubeError, KubeUnreachable, TimeoutError) as exc:
                self._failed(f"cannot read the shared state of bucket {bucket}: {exc or 'timed out'}")
                break  # those read so far start; the rest next round
        taken = {bucket: lines for bucket, lines in loaded.items() if self.holds(bucket)}
        if not taken:
            return
        self._active |= taken.keys()
        if self._host is not None:
            await self._host.take(taken)

    def _failed(self, problem: str) -> None:
        self.settled = False
        if problem != self._problem:
            log.error("sharding: %s", problem)
        self._problem = problem
