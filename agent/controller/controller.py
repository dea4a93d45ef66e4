"""Scheduling: one loop per app, polling with jitter, refreshes, manual syncs and rollbacks on request.

One operation at a time per app (its own loop runs it); at most
`max_concurrent_reconciles` apps reconcile at once. The controller is the single
writer of every AppStatus; it builds them from ReconcileResults in `_record`, which
also appends the sync history and hands the app's record to the state store.

Before the first reconcile, `restore` loads the snapshot (status is served from it at
once). An app the snapshot does not cover (or every app, when the snapshot was lost)
gets its inventory rebuilt from the cluster before its first reconcile can prune.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import replace

from agent.config import AppSpec, Settings
from agent.config.diff import desired_state_changed, diff_settings, effective_settings
from agent.controller.reconcile import OperationRequest, Reconciler, ReconcileResult
from agent.controller.reload import ReloadSummary, source_options
from agent.controller.teardown import Teardown
from agent.controller.worker import (
    AppWorker,
    QueueFull,
    crashed_result,
    error_status,
    log_result,
    next_last_sync,
    result_status,
)
from agent.engine.health import HealthAssessor
from agent.engine.history import append_history, history_entry, rollback_target
from agent.errors import AgentError, KubeError, NotLeader
from agent.metrics import Metrics
from agent.model import AppStatus, AutoSyncPause, HistoryEntry, ObjectRef, SyncTrigger
from agent.source import normalize_url, push_matches_revision
from agent.state import AppRecord, StateStore, record_to_dict
from agent.tasks import TaskSet

log = logging.getLogger(__name__)

ERROR_RETRY_MIN = 2.0


class Controller:
    def __init__(self, settings: Settings, reconciler: Reconciler, metrics: Metrics, *,
                 state: StateStore | None = None, random_fraction: Callable[[], float] = random.random) -> None:
        self._settings = settings
        self._reconciler = reconciler
        self._metrics = metrics
        self._state = state
        self._random = random_fraction
        self._slots = asyncio.Semaphore(settings.agent.max_concurrent_reconciles)
        self._workers = {spec.name: AppWorker(spec) for spec in settings.applications}
        self._statuses = {spec.name: AppStatus(name=spec.name) for spec in settings.applications}
        self._tasks = TaskSet()
        self._running = False  # app loops run: this replica leads (or needs no election)
        self._stopping = asyncio.Event()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._restored = False
        self._restore_lock = asyncio.Lock()
        self._inventory_lock = asyncio.Lock()
        self._reload_lock = asyncio.Lock()
        self._unclaimed: dict[str, AppRecord] = {}  # snapshot records of apps not configured (see _add_app)

    # ------------------------------------------------------------- read views

    def statuses(self) -> list[AppStatus]:
        return [self._statuses[name] for name in sorted(self._statuses)]

    def status(self, name: str) -> AppStatus | None:
        return self._statuses.get(name)

    def spec(self, name: str) -> AppSpec | None:
        worker = self._workers.get(name)
        return worker.spec if worker else None

    def diffs(self, name: str) -> dict[ObjectRef, str] | None:
        """Per object, what the last comparison found that a sync would change."""
        worker = self._workers.get(name)
        return dict(worker.diffs) if worker else None

    def history(self, name: str) -> tuple[HistoryEntry, ...] | None:
        """The app's sync history, newest first."""
        worker = self._workers.get(name)
        return worker.history if worker else None

    @property
    def all_reconciled(self) -> bool:
        return all(worker.reconciled for worker in self._workers.values())

    def not_yet_reconciled(self) -> list[str]:
        """Apps not reconciled by this process yet (a status restored from the snapshot does not count)."""
        return sorted(name for name, worker in self._workers.items() if not worker.reconciled)

    # ------------------------------------------------------------- commands

    def request_refresh(self, name: str) -> bool:
        """Reconcile the app as soon as possible; requests made meanwhile coalesce into one.

        The app's repository is asked again (its shared ls-remote answer is dropped).
        """
        worker = self._workers.get(name)
        if worker is None:
            return False
        self._reconciler.forget_revisions(worker.spec.repo)
        worker.wake.set()
        return True

    def on_live_change(self, app: str, ref: ObjectRef, content_changed: bool) -> None:
        """The watch cache saw one of the app's objects change: compare again now.

        A content change the agent did not make is drift (self-heal reverts it at once); a
        status change only refreshes health, which an unchanged app does from the cache alone.
        """
        worker = self._workers.get(app)
        if worker is None:
            return
        if content_changed:
            log.info("live object changed", extra={"app": app, "object": str(ref)})
        worker.wake.set()

    def refresh_repository(self, urls: Iterable[str], ref: str) -> list[str]:
        """Refresh at once every app on one of `urls` (compared normalized) whose revision `ref` can move.

        For git push webhooks; returns the names of the apps refreshed.
        """
        wanted = {normalize_url(url) for url in urls}
        names = []
        for name, worker in sorted(self._workers.items()):
            spec = worker.spec
            if normalize_url(spec.repo) in wanted and push_matches_revision(ref, spec.revision):
                self._reconciler.forget_revisions(spec.repo)
                worker.webhook_pending = True
                worker.wake.set()
                names.append(name)
        return names

    async def sync_now(self, name: str, request: OperationRequest) -> ReconcileResult | None:
        """Run a manual sync (or dry run) through the app's own loop and wait for its result.

        Raises QueueFull when the app has too many distinct operations waiting already, and
        RevisionRefused for a revision the app may not be synced to (agent.controller.revisions).
        """
        worker = self._workers.get(name)
        if worker is None:
            return None
        if not self._running:
            return _not_running(name, "this agent is not the leader (or is stopping): only the leader syncs")
        if request.revision is not None:
            await self._reconciler.check_manual_revision(worker.spec, request.revision,
                                                         {entry.revision for entry in worker.history})
        # Shielded: callers may share the future, and one that goes away must not cancel it for the others.
        return await asyncio.shield(worker.enqueue(request))

    async def rollback(self, name: str, revision: str | None = None) -> ReconcileResult | None:
        """Sync the app to a revision from its history and pause its automated sync.

        Without `revision`, the previous successful one. Raises `RollbackRefused` when there
        is nothing to go back to. The pause lasts until `resume` or a new commit on the
        tracked revision; a rollback that could not sync at all (git error) does not pause.
        """
        worker = self._workers.get(name)
        if worker is None:
            return None
        await self.restore()
        target = rollback_target(worker.history, revision)
        previous = worker.pause
        try:
            tracked = await self._reconciler.resolve_tracked(worker.spec)
        except AgentError:
            tracked = worker.tracked_sha  # a later commit than this still resumes
        self._set_pause(worker, AutoSyncPause(f"rolled back to {target.revision[:7]}", tracked, time.time()))
        log.warning("rollback: auto-sync paused", extra={"app": name, "revision": target.revision,
                                                          "author": target.author})
        try:
            result = await self.sync_now(name, OperationRequest(revision=target.revision,
                                                                trigger=SyncTrigger.ROLLBACK))
        except QueueFull:
            self._set_pause(worker, previous)
            raise
        if result is not None and result.sync is None:
            self._set_pause(worker, previous)
        return result

    async def resume(self, name: str) -> bool | None:
        """Lift the app's auto-sync pause and reconcile it now; True when it was paused, None for an
        unknown app."""
        worker = self._workers.get(name)
        if worker is None:
            return None
        await self.restore()
        paused = worker.pause is not None
        if paused:
            self._set_pause(worker, None)
            log.warning("auto-sync resumed on request", extra={"app": name})
        self.request_refresh(name)
        return paused

    def _set_pause(self, worker: AppWorker, pause: AutoSyncPause | None) -> None:
        name = worker.spec.name
        if self._workers.get(name) is not worker:
            return  # removed from the configuration meanwhile
        worker.pause = pause
        worker.pause_changes += 1
        self._statuses[name] = replace(self._statuses[name], paused=pause)
        self._persist(worker)

    # ------------------------------------------------------------- lifecycle

    async def restore(self) -> None:
        """Load the snapshot once: statuses, inventories, proofs of sync, history, pauses."""
        async with self._restore_lock:
            if self._restored:
                return
            if self._state is None:
                self._restored = True
                return
            loaded = await self._state.load()
            self._restored = True
            for name, record in loaded.records.items():
                worker = self._workers.get(name)
                if worker is None:  # no longer configured: dropped from the next snapshot, unless added back
                    self._unclaimed[name] = record
                    continue
                status = worker.restore(record)
                # A backup may be a write behind: rebuild what it may have missed.
                worker.needs_inventory = loaded.source != "primary"
                self._statuses[name] = status
                self._metrics.observe_status(status, dest_namespace=worker.spec.namespace)
                self._persist(worker)

    def mark_inventories_stale(self) -> None:
        """Rebuild every app's inventory from the cluster before its next reconcile (e.g. on becoming
        leader: another replica may have applied objects this one's snapshot does not know)."""
        for worker in self._workers.values():
            worker.needs_inventory = True

    async def write_state(self) -> bool:
        """Write the snapshot now (the final write at shutdown); False when it failed."""
        if self._state is None or not self._restored:
            return False
        return await self._state.write()

    def start(self) -> None:
        """Start the state writer and every app's loop (again, after `halt`)."""
        self._running = True
        if self._state is not None:
            self._tasks.spawn("state-writer", self._state.run())
        for name, worker in self._workers.items():
            self._tasks.spawn(f"app:{name}", self._loop(worker))

    async def halt(self) -> None:
        """Cancel every loop at once, in-flight reconciles and syncs included: the leader lease was
        lost. Cancellation lands at each reconcile's next await, before its next write. Waiting
        manual syncs get an error result; `start` resumes.
        """
        self._running = False
        tasks, self._tasks = self._tasks, TaskSet()
        await tasks.shutdown()
        for worker in self._workers.values():
            requests, worker.requests = worker.requests, []
            for _, future in requests:
                if not future.done():
                    future.set_result(_not_running(worker.spec.name, "this agent lost the leader lease"))

    async def stop(self, *, drain_timeout: float = 8.0) -> None:
        """Stop polling, let in-flight reconciles finish (bounded), then cancel what is left."""
        self._running = False
        self._stopping.set()
        for worker in self._workers.values():
            worker.wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=drain_timeout)
        except TimeoutError:
            log.warning("reconciles still running after %.0fs; cancelling them", drain_timeout)
        await self._tasks.shutdown()
        await self._reconciler.close()
        for worker in self._workers.values():
            for _, future in worker.requests:
                future.cancel()

    # ------------------------------------------------------------- the loop

    async def reconcile_once(self, name: str, request: OperationRequest | None = None) -> ReconcileResult | None:
        """One reconcile of one app, recorded like any other (for the CLI and tests)."""
        worker = self._workers.get(name)
        return None if worker is None else await self._run_once(worker, request)

    async def _run_once(self, worker: AppWorker, request: OperationRequest | None) -> ReconcileResult:
        await self.restore()
        async with worker.lock, self._slots:
            trigger = request.trigger if request is not None else self._automatic_trigger(worker)
            pause_changes = worker.pause_changes
            self._in_flight += 1
            self._idle.clear()
            try:
                result = await self._ensure_inventory(worker)
                if result is None:
                    result = await self._reconciler.reconcile(
                        worker.spec, last=worker.last_sync, request=request, kinds=worker.kinds,
                        applied=worker.applied, pause=worker.pause,
                    )
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()
            self._record(worker, result, request, trigger, pause_changes=pause_changes)
        return result

    @staticmethod
    def _automatic_trigger(worker: AppWorker) -> SyncTrigger:
        trigger = SyncTrigger.WEBHOOK if worker.webhook_pending else SyncTrigger.AUTO
        worker.webhook_pending = False
        return trigger

    async def _ensure_inventory(self, worker: AppWorker) -> ReconcileResult | None:
        """Rebuild, once and for every app that needs it, the inventory the snapshot did not have.

        Returns an error result (nothing runs, nothing is pruned) when the cluster cannot be listed.
        """
        if not worker.needs_inventory:
            return None
        async with self._inventory_lock:
            waiting = [w for w in self._workers.values() if w.needs_inventory]
            if worker not in waiting:
                return None  # rebuilt while this one waited
            started = time.time()
            try:
                rebuilt = await self._reconciler.rebuild_inventories([w.spec for w in waiting])
            except KubeError as exc:
                error = KubeError(f"cannot rebuild the inventory from the cluster: {exc.message}")
                return ReconcileResult(worker.spec.name, started, time.time() - started, error=error,
                                       kinds=worker.kinds, pause=worker.pause)
            for waiter in waiting:
                entries = rebuilt.entries.get(waiter.spec.name, ())
                waiter.inventory = entries
                waiter.kinds = waiter.kinds | {(entry.api_version, entry.ref.kind) for entry in entries}
                waiter.needs_inventory = False
            log.warning("inventories rebuilt from the cluster: %d applications, %d objects, %d resource types listed",
                        len(waiting), sum(len(e) for e in rebuilt.entries.values()), rebuilt.lists,
                        extra={"duration": round(time.time() - started, 3)})
        return None

    async def _loop(self, worker: AppWorker) -> None:
        while not self._stopping.is_set():
            worker.wake.clear()
            await self._serve(worker)
            if self._stopping.is_set():
                return
            if worker.requests:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._next_delay(worker)):
                    await worker.wake.wait()

    async def _serve(self, worker: AppWorker) -> None:
        """One reconcile, for the oldest request if one waits. Its own frame: the result (live
        objects, apply responses) is not kept alive while the loop waits for the next wake-up.

        Whatever a reconcile raises besides cancellation (a bug, a malformed object no check
        caught) becomes the app's error status and the waiting request's answer; the loop goes
        on with backoff. Without this, one bad manifest ended the app's loop for good.
        """
        request, future = worker.requests.pop(0) if worker.requests else (None, None)
        started = time.time()
        try:
            result = await self._run_once(worker, request)
            worker.crash = ""
        except asyncio.CancelledError:
            if future is not None and not future.done():
                future.set_result(_not_running(worker.spec.name, "interrupted: lease lost or stopping"))
            raise
        except Exception as exc:  # the supervisor of one app's loop: nothing may end it
            result = self._crashed(worker, request, exc, started=started)
        if future is not None and not future.done():
            future.set_result(result)

    def _crashed(self, worker: AppWorker, request: OperationRequest | None, exc: Exception, *,
                 started: float) -> ReconcileResult:
        """Record an unexpected failure as the app's status; its traceback is logged once per kind of failure."""
        result = crashed_result(worker.spec.name, exc, started=started)
        signature = f"{type(exc).__name__}: {exc}"
        if signature != worker.crash:  # repeats are logged by _record, without the traceback again
            log.error("reconcile raised %s", type(exc).__name__, exc_info=exc,
                      extra={"app": worker.spec.name, "error": str(result.error)})
        worker.crash = signature
        if self._workers.get(worker.spec.name) is worker:  # not removed from the configuration meanwhile
            trigger = request.trigger if request is not None else SyncTrigger.AUTO
            self._record(worker, result, request, trigger)
        return result

    def _next_delay(self, worker: AppWorker) -> float:
        agent = self._settings.agent
        if worker.failures:
            backoff = ERROR_RETRY_MIN * 2 ** (worker.failures - 1)
            return float(min(backoff, agent.poll_interval) * (0.9 + 0.2 * self._random()))
        delay = agent.poll_interval + agent.poll_jitter * self._random()
        if worker.retry_at is not None:
            delay = min(delay, max(0.0, worker.retry_at - time.time()))
        return delay

    # ------------------------------------------------------------- status

    def _record(self, worker: AppWorker, result: ReconcileResult, request: OperationRequest | None,
                trigger: SyncTrigger, *, pause_changes: int = 0) -> None:
        worker.reconciled = True
        before = self._statuses.get(result.app)
        if result.error is not None:
            worker.failures += 1
            status = error_status(self._statuses[result.app], result)
            log.error("reconcile failed", extra={"app": result.app, "error": str(result.error)})
            outcome = "error"
        else:
            worker.failures = 0
            self._remember(worker, result, request, trigger, pause_changes=pause_changes)
            status = result_status(self._statuses[result.app], result)
            outcome = "synced" if result.sync else "compared"
            log_result(result, status, trigger)
        status = replace(status, paused=worker.pause)
        self._statuses[result.app] = status
        self._metrics.observe_reconcile(result.app, outcome, result.duration)
        self._metrics.observe_status(status, dest_namespace=worker.spec.namespace)
        if not (result.reused and before is not None and _same_but_time(before, status)):
            self._persist(worker)  # an unchanged app is not written again only because it was polled

    def _remember(self, worker: AppWorker, result: ReconcileResult, request: OperationRequest | None,
                  trigger: SyncTrigger, *, pause_changes: int) -> None:
        """Keep what the next reconcile (and the snapshot) needs from a reconcile that ran."""
        worker.kinds = result.kinds
        worker.diffs = result.diffs
        worker.retry_at = result.decision.retry_at if result.decision else None
        worker.applied = dict(result.applied)
        worker.inventory = result.inventory
        if request is None and result.revision is not None:
            worker.tracked_sha = result.revision.sha
            if pause_changes == worker.pause_changes:  # else a rollback or resume came in meanwhile: it wins
                if worker.pause is not None and result.pause is None:
                    log.warning("auto-sync resumed: a new commit arrived",
                                extra={"app": result.app, "revision": result.revision.sha})
                worker.pause = result.pause
        sync = result.sync
        if sync is not None and result.revision is not None:
            worker.last_sync = next_last_sync(worker.last_sync, result, manual=request is not None)
            self._metrics.observe_sync(result.app, sync.phase, sync.finished - sync.started)
            entry = history_entry(worker.history, revision=result.revision, trigger=trigger, phase=sync.phase,
                                  started=sync.started, finished=sync.finished, changes=sync.changes)
            worker.history = append_history(worker.history, entry, self._settings.agent.history_limit)

    def _persist(self, worker: AppWorker) -> None:
        if self._state is not None and self._restored:
            name = worker.spec.name
            self._state.update(name, record_to_dict(worker.record(self._statuses[name])))

    # ------------------------------------------------------------- configuration reload

    async def apply_settings(self, settings: Settings) -> ReloadSummary:
        """Run with reloaded settings (SIGHUP): start added apps, stop removed ones, refresh changed ones.

        Unchanged apps are left alone. [agent] keys that need a restart keep their running
        values (agent.config.diff). Returns once every changed or removed app's operation in
        flight has finished, and removed apps with `prune_on_delete` had their objects deleted.
        """
        async with self._reload_lock:
            await self.restore()
            change = diff_settings(self._settings, settings)
            self._settings = effective_settings(self._settings, settings)
            self._reconciler.reconfigure(source=source_options(self._settings.agent),
                                         repositories=self._settings.repositories,
                                         health=HealthAssessor(self._settings.health_checks))
            for spec in change.added:
                self._add_app(spec)
            for name, worker in list(self._workers.items()):
                if change.repositories and worker.failures:
                    self.request_refresh(name)  # new credentials may fix it: ask the git server again
                elif change.health_checks:  # every app's health may read differently now
                    worker.wake.set()
            changing = asyncio.gather(*(self._replace_spec(spec) for spec in change.changed))
            removing = asyncio.gather(*(self._remove_app(spec) for spec in change.removed))
            _, teardowns = await asyncio.gather(changing, removing)
        return ReloadSummary(change, {spec.name: teardown for spec, teardown in zip(change.removed, teardowns,
                                                                                     strict=True) if teardown})

    def _add_app(self, spec: AppSpec) -> None:
        """Reconcile an app the configuration gained, from its snapshot record if one is known (an app
        configured earlier in this process, or before the last restart)."""
        worker, status = AppWorker(spec), AppStatus(name=spec.name)
        record = self._unclaimed.pop(spec.name, None)
        if record is not None:
            status = worker.restore(record)
            worker.needs_inventory = True  # nobody followed it meanwhile: see what it owns now
        self._workers[spec.name], self._statuses[spec.name] = worker, status
        if record is not None:
            self._metrics.observe_status(status, dest_namespace=spec.namespace)
            self._persist(worker)
        if self._running:
            self._tasks.spawn(f"app:{spec.name}", self._loop(worker))

    async def _replace_spec(self, spec: AppSpec) -> None:
        """Reconcile a changed app with its new spec now; an operation in flight finishes first."""
        worker = self._workers[spec.name]
        async with worker.lock:
            previous, worker.spec = worker.spec, spec
            if desired_state_changed(previous, spec):
                # Synced as a new revision would be (also without self-heal), retries counted afresh.
                worker.last_sync, worker.retry_at = None, None
        self.request_refresh(spec.name)

    async def _remove_app(self, spec: AppSpec) -> Teardown | None:
        """Stop an app the configuration lost: its operation in flight finishes, its loop ends, its
        status and metric series go. Its objects stay unless it had `prune_on_delete = true`."""
        worker = self._workers[spec.name]
        async with worker.lock:
            loop = self._tasks.named(f"app:{spec.name}")
            if loop is not None:
                loop.cancel()
                await asyncio.gather(loop, return_exceptions=True)
            requests, worker.requests = worker.requests, []
            for _, future in requests:
                if not future.done():
                    future.set_result(_not_running(spec.name, "the application was removed from the configuration"))
            teardown = await self._teardown(worker) if spec.prune_on_delete else None
            status = self._statuses.pop(spec.name)
            del self._workers[spec.name]
            self._metrics.forget_app(spec.name)
            if self._state is not None:
                self._state.forget(set(self._workers))
        if not spec.prune_on_delete:
            self._unclaimed[spec.name] = worker.record(status)
            log.info("application removed from the configuration; its objects stay in the cluster",
                     extra={"app": spec.name})
        return teardown

    async def _teardown(self, worker: AppWorker) -> Teardown | None:
        """Delete what a removed app owns (prune_on_delete); None when nothing could be looked at."""
        spec = worker.spec
        if not self._running:
            log.warning("application removed with prune_on_delete, but this replica does not lead: "
                        "nothing deleted", extra={"app": spec.name})
            return None
        problem = "cannot list its objects; nothing deleted"
        failed = await self._ensure_inventory(worker)  # what it owns, when no snapshot said so
        if failed is not None:
            log.error("application removed with prune_on_delete: %s", problem,
                      extra={"app": spec.name, "error": str(failed.error)})
            return None
        try:
            teardown = await self._reconciler.delete_owned(
                spec, worker.kinds | {(entry.api_version, entry.ref.kind) for entry in worker.inventory},
                {entry.ref.namespace for entry in worker.inventory if entry.ref.namespace},
            )
        except KubeError as exc:
            log.error("application removed with prune_on_delete: %s", problem,
                      extra={"app": spec.name, "error": str(exc)})
            return None
        level = logging.WARNING if teardown.failed else logging.INFO
        log.log(level, "application removed with prune_on_delete: %d objects deleted, %d kept, %d failed",
                len(teardown.deleted), len(teardown.kept), len(teardown.failed), extra={"app": spec.name})
        return teardown



def _not_running(app: str, message: str) -> ReconcileResult:
    return ReconcileResult(app, time.time(), 0.0, error=NotLeader(message))


def _same_but_time(before: AppStatus, after: AppStatus) -> bool:
    return replace(before, reconciled_at=None) == replace(after, reconciled_at=None)
