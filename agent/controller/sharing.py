"""The controller's side of sharding: which apps run here, and what is known of those that run elsewhere.

    take(bucket, lines)      a bucket just claimed: its apps' states from the shared state, their
                             inventories to be rebuilt from the cluster, their loops started
    give_up(bucket, why)     a bucket handed over or lost: its apps' loops cancelled (in-flight
                             syncs stop at their next await, before their next write)
    remote(bucket, lines)    another owner wrote a bucket: its apps' states as the API shows them
                             here, and every parent's children known here

Every replica holds every app (TOML apps, and the children of every parent), with its loop
only where its bucket is active (`Controller.runs`).
"""

from __future__ import annotations

import logging

from agent.controller.controller import Controller
from agent.errors import AgentError
from agent.shard.buckets import bucket_of
from agent.shard.coordinator import ShardCoordinator
from agent.shard.records import record_of
from agent.state import RecordError

log = logging.getLogger(__name__)

# How long a hand-over waits for one app's loop to end once cancelled. The write gate is closed
# for the app before the loop is cancelled, so a loop slow to end can no longer write.
STOP_WAIT = 5.0


class ControllerShards:
    def __init__(self, controller: Controller, coordinator: ShardCoordinator) -> None:
        self._controller, self._coordinator = controller, coordinator
        controller.runs = coordinator.runs
        controller.apps.owns = coordinator.runs
        controller.apps.shared = coordinator.shared
        coordinator.shared.on_remote = self.remote
        coordinator.attach(self)

    def _names(self, bucket: int) -> list[str]:
        return sorted(name for name in self._controller.apps.workers if bucket_of(name) == bucket)

    async def take(self, buckets: dict[int, dict[str, bytes]]) -> None:
        """Buckets just claimed (bucket → its shared-state lines): all their apps at once, so that
        their first reconciles rebuild the inventories in one round of LISTs."""
        controller = self._controller
        await controller.restore()
        parents = [parent for bucket, lines in sorted(buckets.items())
                   for parent in self._apply(bucket, lines, owned=True)]
        names = [name for bucket in sorted(buckets) for name in self._names(bucket)]
        controller.apps.forget_cluster(names)  # another replica may have applied or pruned meanwhile
        for name in names:
            controller.apps.persist(name)  # a state never written to the shared state gets its record now
        for parent in parents:
            await self._follow(parent)
        for bucket in sorted(buckets):
            for name in self._names(bucket):
                controller.spawn_loop(controller.apps.workers[name])
        log.info("sharding: %d buckets run here now: %d applications", len(buckets), len(names),
                 extra={"buckets": sorted(buckets)})

    async def give_up(self, bucket: int, why: str) -> None:
        controller = self._controller
        for name in self._names(bucket):
            worker = controller.apps.workers.get(name)
            if worker is not None:
                await controller.cancel_loop(worker, why, within=STOP_WAIT)
                worker.reconciled = False  # when it comes back, it is reconciled afresh before being ready
            controller.apps.released(name)

    async def remote(self, bucket: int, lines: dict[str, bytes]) -> None:
        for parent in self._apply(bucket, lines, owned=False):
            await self._follow(parent)

    def _apply(self, bucket: int, lines: dict[str, bytes], *, owned: bool) -> list[str]:
        """Store the records; the parents whose children (as their records name them) may have changed."""
        apps = self._controller.apps
        parents = []
        for name, raw in sorted(lines.items()):
            try:
                record = record_of(raw, where=f"shared state of bucket {bucket}")
            except RecordError as exc:
                log.warning("sharding: a record ignored: %s", exc, extra={"app": name})
                continue
            before = apps.state(name)
            state = apps.from_shared(name, record, owned=owned)
            had = before is not None and before.adopted is not None
            if state is not None and (state.adopted is not None or had) and (
                    owned or before is None or before.adopted != state.adopted):
                parents.append(name)
        return parents

    async def _follow(self, parent: str) -> None:
        try:
            await self._controller.adoption.follow(parent)
        except AgentError as exc:
            log.error("sharding: the children of a parent running elsewhere not followed",
                      extra={"app": parent, "error": str(exc)})
