"""Every configured app: its spec, its worker (scheduling) and its AppState — one value, replaced whole.

The table is the single writer of states. A reconcile's outcome is stored with `store`,
which detects a stale one by version: a command (a rollback's pause, a resume) that
changed the state while the reconcile ran keeps what it set. Every stored state goes to
the metrics and, encoded, to the snapshot writer.

It is also where notifications are decided (agent.notifications): each stored state is
compared with the one it replaces, the marks of what fired are stored with it, and the
deliveries are handed over once the snapshot update holding the marks is queued.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from agent.config import AppSpec
from agent.controller.claims import ClaimIndex
from agent.controller.reconcile import AppReconciler
from agent.controller.worker import AppWorker
from agent.errors import AgentError, KubeError, KubeUnreachable
from agent.metrics import Metrics
from agent.model import AppState, AppStatus, AutoSyncPause, InventoryEntry
from agent.notifications import Notifications, Pending
from agent.shard.records import merged
from agent.state import LoadResult, RecordError, StateStore, state_to_dict

log = logging.getLogger("agent.controller.controller")  # the events' logger name stays the controller's


DestServer = Callable[[AppSpec], str]  # the server URL of the app's cluster, for metrics


class SharedSink(Protocol):
    """Where the durable part of owned apps' states goes with sharding (agent.shard.shared)."""

    def update(self, state: AppState) -> None: ...

    def forget(self, name: str) -> None: ...

    async def write_now(self, name: str) -> bool: ...


class AppTable:
    def __init__(self, specs: tuple[AppSpec, ...], *, metrics: Metrics, snapshot: StateStore | None,
                 dest_server: DestServer | None = None, notifications: Notifications | None = None) -> None:
        self._metrics = metrics
        self._snapshot = snapshot
        self._dest_server = dest_server or (lambda spec: "")
        self.notifications = notifications
        self.workers: dict[str, AppWorker] = {spec.name: AppWorker(spec) for spec in specs}
        self._states: dict[str, AppState] = {spec.name: AppState.new(spec.name, cluster=spec.cluster)
                                             for spec in specs}
        self._unclaimed: dict[str, AppState] = {}  # states of apps not configured (see add)
        self._sorted: list[str] | None = None  # the names in order, until an app is added or removed
        self.changes = 0  # moves whenever a state or spec is replaced: an unchanged count, unchanged views
        self._restored = False
        # Per cluster: a rebuild that waits on one cluster does not hold up another's.
        self._inventory_locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self.claims = ClaimIndex()  # which app declares which object: read by the ownership rules
        # With sharding: whether an app runs here (only then are its notifications decided and its
        # metrics shown), and where the durable part of those apps' states goes.
        self.owns: Callable[[str], bool] = _everything
        self.shared: SharedSink | None = None

    # ------------------------------------------------------------- reading

    def state(self, name: str) -> AppState | None:
        return self._states.get(name)

    def spec(self, name: str) -> AppSpec | None:
        worker = self.workers.get(name)
        return worker.spec if worker else None

    def names(self) -> list[str]:
        """Every app's name, sorted (kept: with ten thousand apps every list of them would sort them)."""
        if self._sorted is None:
            self._sorted = sorted(self._states)
        return self._sorted

    def statuses(self) -> list[AppStatus]:
        return [self._states[name].status for name in self.names()]

    def states(self) -> list[AppState]:
        return [self._states[name] for name in self.names()]

    def summaries(self) -> list[tuple[AppState, AppSpec]]:
        """Every app's state and spec, by name."""
        return [(self._states[name], self.workers[name].spec) for name in self.names()]

    # ------------------------------------------------------------- writing

    def store(self, base: AppState, next_state: AppState, *, persist: bool = True) -> AppState:
        """Keep `next_state`, computed from `base`. When the state moved on meanwhile (its version
        differs), the command that moved it wins for what commands set: the pause."""
        current = self._states.get(base.name)
        if current is None:  # removed from the configuration meanwhile
            return next_state
        if current.version != base.version:
            next_state = replace(next_state, pause=current.pause)
        stored = replace(next_state, version=current.version + 1, notified=current.notified)  # marks: ours alone
        pending = self._decide(current, stored) if self.owns(base.name) else None
        if pending is not None:
            persist = persist or pending.marks != current.notified
            stored = replace(stored, notified=pending.marks)
        self._states[base.name] = stored
        self.changes += 1
        self._observe(stored, self.workers[base.name].spec)
        if stored.status.resources is not current.status.resources:
            self._wake(self.claims.update(base.name, stored.status))
        if persist:
            self.persist(base.name)
        self._submit(pending)
        return stored

    def _wake(self, apps: set[str]) -> None:
        """What these apps share with another app changed: compare them again soon."""
        for app in apps:
            worker = self.workers.get(app)
            if worker is not None:
                worker.wake.set()

    def _decide(self, previous: AppState, current: AppState, *, deleted_at: float | None = None) -> Pending | None:
        if self.notifications is None:
            return None
        return self.notifications.decide(self.workers[current.name].spec, previous, current, deleted_at=deleted_at)

    def _submit(self, pending: Pending | None) -> None:
        """Hand the deliveries over, to go out once the snapshot update holding their marks is written."""
        if pending is not None and pending.deliveries and self.notifications is not None:
            written = self._snapshot.updates if self._snapshot is not None and self._restored else 0
            self.notifications.submit(pending, written=written)

    def set_pause(self, name: str, pause: AutoSyncPause | None) -> None:
        current = self._states.get(name)
        if current is not None:
            self.store(current, replace(current, pause=pause))

    def forget_attempts(self, name: str) -> None:
        """Count the app's sync attempts afresh (its project's rules changed)."""
        current = self._states.get(name)
        if current is not None and current.last_sync is not None:
            self.store(current, replace(current, last_sync=None))

    def rebuilt(self, name: str, entries: tuple[InventoryEntry, ...]) -> None:
        """The app's inventory, as listed from the cluster."""
        current = self._states[name]
        kinds = current.kinds | {(entry.api_version, entry.ref.kind) for entry in entries}
        self.store(current, replace(current, inventory=entries, kinds=kinds, inventory_known=True))

    def _observe(self, state: AppState, spec: AppSpec) -> None:
        if self.owns(state.name):  # every replica knows every app; each shows the metrics of its own
            self._metrics.observe_status(state.status, app=spec, dest_server=self._dest_server(spec))

    async def ensure_inventory(self, name: str, reconciler: AppReconciler) -> AgentError | None:
        """Rebuild, once and for every app of the same cluster that needs it, the inventory the snapshot
        did not have.

        Returns the error (nothing runs, nothing is pruned) when the cluster cannot be listed, or is
        not known.
        """
        state = self._states.get(name)
        if state is None or state.inventory_known:
            return None
        cluster = self.workers[name].spec.cluster
        async with self._inventory_locks[cluster]:
            waiting = [s.name for s in self.states()
                       if not s.inventory_known and self.workers[s.name].spec.cluster == cluster]
            if name not in waiting:
                return None  # rebuilt while this one waited
            started = time.time()
            try:
                rebuilt = await reconciler.rebuild_inventories([self.workers[n].spec for n in waiting])
            except (KubeError, KubeUnreachable) as exc:
                return type(exc)(f"cannot rebuild the inventory from the cluster: {exc.message}")
            except AgentError as exc:  # the app names no known cluster
                return exc
            for waiter in waiting:
                self.rebuilt(waiter, rebuilt.entries.get(waiter, ()))
            log.info("inventories rebuilt from the cluster: %d applications, %d objects, %d resource types listed",
                     len(waiting), sum(len(e) for e in rebuilt.entries.values()), rebuilt.lists,
                     extra={"duration": round(time.time() - started, 3)})
        return None

    def forget_cluster(self, names: Iterable[str] | None = None) -> None:
        """What was learned from the cluster may be out of date (another replica led meanwhile): every
        inventory (of `names`, default all) is rebuilt before the next prune, and a sync in progress
        plans again from its first wave."""
        for name in list(self._states) if names is None else [n for n in names if n in self._states]:
            current = self._states[name]
            operation = current.operation and replace(current.operation, plan=None)
            self._states[name] = replace(current, inventory_known=False, operation=operation, unchanged=None,
                                         version=current.version + 1)
        self.changes += 1

    def from_shared(self, name: str, record: Mapping[str, Any], *, owned: bool) -> AppState | None:
        """The durable part of the app's state as its owner wrote it (agent.shard.records). For an app
        running elsewhere: what the API shows of it here. For one just taken over (`owned`): what its
        first reconcile starts from, its inventory rebuilt from the cluster first. An app not configured
        here (yet: a child whose parent's record is still to come) is remembered for when it is; a
        record this version cannot read is ignored (the local state stays)."""
        current = self._states.get(name)
        try:
            state = merged(current or self._unclaimed.get(name) or AppState.new(name), record)
        except RecordError as exc:
            log.warning("shared state of the application ignored: %s", exc, extra={"app": name})
            return None
        if current is None:
            self._unclaimed[name] = state
            return None
        spec = self.workers[name].spec
        operation = state.operation and replace(state.operation, plan=None)
        state = replace(state, version=current.version + 1, operation=operation, unchanged=None, diffs={},
                        inventory_known=current.inventory_known and not owned).on_cluster(spec.cluster)
        self._states[name] = state
        self.changes += 1
        if state.status.resources != current.status.resources:
            self._wake(self.claims.update(name, state.status))
        self._observe(state, spec)
        self.persist(name)  # into the local snapshot; an owned one's shared record is unchanged by it
        return state

    def released(self, name: str) -> None:
        """The app runs elsewhere now: its metric series are the new owner's to show."""
        self._metrics.forget_app(name)

    async def durable(self, name: str) -> None:
        """With sharding: the app's durable part is in the cluster before the caller goes on (a pause
        must outlive its owner, even one killed right after answering)."""
        if self.shared is not None and self.owns(name) and not await self.shared.write_now(name):
            log.warning("shared state not written at once; it is written again shortly", extra={"app": name})

    def persist(self, name: str) -> None:
        if self._snapshot is not None and self._restored and name in self._states:
            self._snapshot.update(name, state_to_dict(self._states[name]))
        if self.shared is not None and name in self._states and self.owns(name):
            self.shared.update(self._states[name])

    # ------------------------------------------------------------- the snapshot

    def restore(self, loaded: LoadResult) -> None:
        """Take over what the snapshot kept. A backup may be a write behind: its inventories are
        rebuilt from the cluster before anything is pruned."""
        self._restored = True
        self.changes += 1
        if loaded.lost:  # every app looks new; announcing each as created (and so on) would repeat old news
            for name, state in self._states.items():
                self._states[name] = replace(state, notified=None)
        for name, state in loaded.states.items():
            if name not in self.workers:  # no longer configured: dropped from the next snapshot, unless added back
                self._unclaimed[name] = state
                continue
            spec = self.workers[name].spec
            self._states[name] = replace(state, inventory_known=loaded.source == "primary").on_cluster(spec.cluster)
            self.claims.update(name, state.status)
            self._observe(state, spec)
            self.persist(name)

    # ------------------------------------------------------------- the configuration changes

    def add(self, spec: AppSpec) -> AppWorker:
        """An app the configuration gained, from its snapshot state if one is known (an app configured
        earlier in this process, or before the last restart): nobody followed it meanwhile, so its
        inventory is rebuilt."""
        worker = self.workers[spec.name] = AppWorker(spec)
        self._sorted, self.changes = None, self.changes + 1
        known = self._unclaimed.pop(spec.name, None)
        self._states[spec.name] = AppState.new(spec.name, cluster=spec.cluster) if known is None else \
            replace(known, inventory_known=False).on_cluster(spec.cluster)
        if known is not None:
            self._wake(self.claims.update(spec.name, known.status))
            self._observe(known, spec)
            self.persist(spec.name)
        return worker

    def remove(self, name: str, *, keep: bool) -> None:
        """An app the configuration lost (`on-deleted`); with `keep`, its state is remembered should it come back."""
        state = self._states[name]
        owned = self.owns(name)
        pending = self._decide(state, state, deleted_at=time.time()) if owned else None
        if pending is not None:
            state = replace(state, notified=pending.marks)
        del self._states[name]
        del self.workers[name]
        self._sorted, self.changes = None, self.changes + 1
        self._wake(self.claims.forget(name))
        self._metrics.forget_app(name)
        if self._snapshot is not None:
            self._snapshot.forget(set(self._states))
        if self.shared is not None and owned:
            self.shared.forget(name)
        self._submit(pending)
        if self.notifications is not None:
            self.notifications.forget(name)
        if keep:
            self._unclaimed[name] = state

    def respecify(self, spec: AppSpec, *, desired_changed: bool) -> None:
        """A changed spec. When it renders other objects it is synced as a new revision would be
        (also without self-heal), its retries counted afresh."""
        self.workers[spec.name].spec = spec
        self.changes += 1
        if desired_changed:
            current = self._states[spec.name]
            self.store(current, replace(current, last_sync=None, unchanged=None).on_cluster(spec.cluster))
            self.workers[spec.name].retry_at = None


def _everything(name: str) -> bool:
    return True
