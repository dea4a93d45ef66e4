"""The controller: apps' loops started and stopped, refreshes, manual syncs and rollbacks on request.

One reconcile at a time per app (its own loop runs it, agent.controller.loop); at most
`max_concurrent_reconciles` apps reconcile at once. A sync is stepped: each reconcile of an app with a sync in
progress advances it (agent.engine.sync) and returns, and the app's loop comes back to it
when the watch cache reports a change to its objects, or a second later. Outcomes are
stored in the AppTable (agent.controller.apps), which is the only writer of app states.

Before the first reconcile, `restore` loads the snapshot (status is served from it at
once). An app the snapshot does not cover (or every app, when the snapshot was lost)
gets its inventory rebuilt from the cluster before its first reconcile can prune.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import random
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from agent.config import AppSpec, Settings
from agent.controller.adoption import Adoption
from agent.controller.apps import AppTable, DestServer
from agent.controller.loop import AppLoops, not_running
from agent.controller.projects import ProjectTable
from agent.controller.reconcile import AppReconciler, ReconcileResult
from agent.controller.worker import OPERATION_POLL, AppWorker
from agent.engine.history import rollback_target
from agent.errors import AgentError, NotPermitted
from agent.metrics import Metrics
from agent.model import (
    AppState,
    AppStatus,
    AutoSyncPause,
    HistoryEntry,
    ObjectRef,
    OperationRequest,
    SyncTrigger,
)
from agent.notifications import Notifications
from agent.source import GitSource, normalize_url, push_matches_revision
from agent.state import StateStore
from agent.tasks import TaskSet

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """An app has as many distinct manual requests waiting as it may; the caller should retry later."""


class Elsewhere(Exception):
    """With sharding: the app runs on another replica (or, during a hand-over, on none); the API
    forwards such requests to the owner, so this is seen only in the moment an app moves."""


class Controller:
    def __init__(self, settings: Settings, reconciler: AppReconciler, metrics: Metrics, *,
                 state: StateStore | None = None, notifications: Notifications | None = None,
                 random_fraction: Callable[[], float] = random.random, dest_server: DestServer | None = None,
                 source: GitSource | None = None) -> None:
        self.settings = settings
        self.reconciler = reconciler
        self._metrics = metrics
        self._snapshot = state
        self.dest_server = dest_server or (lambda spec: "")
        self.apps = AppTable(settings.applications, metrics=metrics, snapshot=state, dest_server=self.dest_server,
                             notifications=notifications)
        self.notifications = notifications
        self.projects = ProjectTable(settings.projects)
        self.projects.on_change(self._wake_projects)
        self.adoption = Adoption(self, source=source)  # Argo CD definitions in renders: apps and projects
        self._tasks = TaskSet()
        self.running = False  # app loops run: this replica leads (or needs no election)
        # With sharding: whether the app's loop belongs to this replica (agent.shard.coordinator).
        self.runs: Callable[[str], bool] = _everywhere
        self.loops = AppLoops(self, self.adoption, metrics, random_fraction=random_fraction)
        self._restored = False
        self._restore_lock = asyncio.Lock()
        self.reload_lock = asyncio.Lock()

    # ------------------------------------------------------------- read views

    def statuses(self) -> list[AppStatus]:
        return self.apps.statuses()

    def state(self, name: str) -> AppState | None:
        return self.apps.state(name)

    def status(self, name: str) -> AppStatus | None:
        state = self.apps.state(name)
        return state.status if state else None

    def spec(self, name: str) -> AppSpec | None:
        return self.apps.spec(name)

    def diffs(self, name: str) -> dict[ObjectRef, str] | None:
        """Per object, what the last comparison found that a sync would change."""
        state = self.apps.state(name)
        return dict(state.diffs) if state else None

    def history(self, name: str) -> tuple[HistoryEntry, ...] | None:
        """The app's sync history, newest first."""
        state = self.apps.state(name)
        return state.history if state else None

    @property
    def all_reconciled(self) -> bool:
        return all(worker.reconciled for name, worker in self.apps.workers.items() if self.runs(name))

    def not_yet_reconciled(self) -> list[str]:
        """Apps not reconciled by this process yet (a status restored from the snapshot does not count);
        with sharding, of those it runs."""
        return sorted(name for name, worker in self.apps.workers.items() if not worker.reconciled and self.runs(name))

    # ------------------------------------------------------------- commands

    def request_refresh(self, name: str) -> bool:
        """Reconcile the app as soon as possible, its repository asked again; requests made meanwhile
        coalesce into one."""
        worker = self.apps.workers.get(name)
        if worker is None:
            return False
        self.reconciler.forget_revisions(worker.spec.repo)
        worker.wake.set()
        return True

    def retry_failed(self) -> None:
        """Credentials changed: every app whose last reconcile failed asks its git server again now."""
        for name, worker in list(self.apps.workers.items()):
            if worker.failures:
                self.request_refresh(name)

    def on_live_change(self, app: str, ref: ObjectRef, content_changed: bool) -> None:
        """The watch cache saw one of the app's objects change: compare again now (or step its sync).

        A content change the agent did not make is drift (self-heal reverts it at once); a
        status change only refreshes health, which an unchanged app does from the cache alone.
        """
        worker = self.apps.workers.get(app)
        if worker is None:
            return
        if content_changed:
            log.info("live object changed", extra={"app": app, "object": str(ref)})
        worker.wake.set()

    def wake_cluster(self, aliases: Collection[str]) -> None:
        """A cluster came back, went down, or was added, changed or removed: reconcile its apps now
        (those naming it by any of `aliases`), so their status follows at once."""
        for worker in self.apps.workers.values():
            if worker.spec.cluster in aliases:
                worker.wake.set()

    def _wake_projects(self, names: set[str]) -> None:
        """A project's rules changed (a reload, or an AppProject in Git): its apps are judged again now,
        their sync attempts counted afresh."""
        for worker in self.apps.workers.values():
            if worker.spec.project in names:
                worker.rules_changed = True
                worker.retry_at = None
                worker.wake.set()

    def refresh_repository(self, urls: Iterable[str], ref: str) -> list[str]:
        """Refresh at once every app on one of `urls` whose revision `ref` can move (push webhooks);
        returns the names of the apps refreshed."""
        wanted = {normalize_url(url) for url in urls}
        names = []
        for name, worker in sorted(self.apps.workers.items()):
            spec = worker.spec
            if self.runs(name) and normalize_url(spec.repo) in wanted and push_matches_revision(ref, spec.revision):
                self.reconciler.forget_revisions(spec.repo)
                worker.webhook_pending = True
                worker.wake.set()
                names.append(name)
        return names

    async def sync_now(self, name: str, request: OperationRequest) -> ReconcileResult | None:
        """Run a manual sync (or dry run) through the app's own loop and wait until it has ended.

        Raises QueueFull when too many distinct requests already wait for the app, and
        RevisionRefused for a revision the app may not be synced to (agent.controller.revisions).
        """
        queued = await self.queue_sync(name, request)
        return queued if queued is None or isinstance(queued, ReconcileResult) else await queued

    async def queue_sync(self, name: str, request: OperationRequest
                         ) -> asyncio.Future[ReconcileResult] | ReconcileResult | None:
        """Queue a manual sync and return the future of its result without waiting for it (`sync
        --async`); a result at once when it cannot run here, None for an unknown app. Raises as sync_now."""
        worker, state = self.apps.workers.get(name), self.apps.state(name)
        if worker is None or state is None:
            return None
        if not self.running:
            return self._not_running(name, "this agent is not the leader (or is stopping): only the leader syncs")
        if not self.runs(name):
            return self._not_running(name, f"application {name} runs on another replica (it is moving): try again")
        if request.revision is not None and self.projects.permits_repo(worker.spec):  # else the reconcile refuses
            await self.reconciler.check_manual_revision(worker.spec, request.revision,
                                                        {entry.revision for entry in state.history})
        answer: asyncio.Future[ReconcileResult] = asyncio.get_running_loop().create_future()
        if not worker.enqueue(request, answer):
            raise QueueFull(f"application {name} already has {len(worker.requests)} operations waiting; "
                            "try again once they are done")
        return answer

    async def rollback(self, name: str, revision: str | None = None, *,
                       initiated_by: str = "") -> ReconcileResult | None:
        """Sync the app to a revision from its history (default: the previous successful one) and pause
        its automated sync until `resume` or a new commit on the tracked revision. Raises
        RollbackRefused when there is nothing to go back to; a rollback that could not sync at all
        (git error) does not pause."""
        worker, state = self.apps.workers.get(name), self.apps.state(name)
        if worker is None or state is None:
            return None
        if not self.runs(name):
            raise Elsewhere(f"application {name} runs on another replica (it is moving): try again")
        await self.restore()
        target = rollback_target(state.history, revision)
        previous = state.pause
        try:
            if not self.projects.permits_repo(worker.spec):
                raise NotPermitted(f"project {worker.spec.project} does not permit {worker.spec.repo}")
            tracked = await self.reconciler.resolve_tracked(worker.spec)
        except AgentError:
            tracked = state.tracked_sha  # a later commit than this still resumes
        self.apps.set_pause(name, AutoSyncPause(f"rolled back to {target.revision[:7]}", tracked, time.time()))
        await self.apps.durable(name)
        log.warning("rollback: auto-sync paused", extra={"app": name, "revision": target.revision,
                                                          "author": target.author, "initiated_by": initiated_by})
        try:
            result = await self.sync_now(name, OperationRequest(revision=target.revision, trigger=SyncTrigger.ROLLBACK,
                                                                initiated_by=initiated_by))
        except QueueFull:
            self.apps.set_pause(name, previous)
            raise
        if result is not None and result.sync is None:
            self.apps.set_pause(name, previous)
        await self.apps.durable(name)  # what it synced, with its history entry, outlives this replica too
        return result

    async def resume(self, name: str) -> bool | None:
        """Lift the app's auto-sync pause and reconcile it now; True when it was paused, None for an
        unknown app."""
        state = self.apps.state(name)
        if state is None:
            return None
        if not self.runs(name):
            raise Elsewhere(f"application {name} runs on another replica (it is moving): try again")
        await self.restore()
        paused = state.pause is not None
        if paused:
            self.apps.set_pause(name, None)
            await self.apps.durable(name)
            log.warning("auto-sync resumed on request", extra={"app": name})
        self.request_refresh(name)
        return paused

    # ------------------------------------------------------------- lifecycle

    async def restore(self) -> None:
        """Load the snapshot once: statuses, inventories, proofs of sync, history, pauses, operations."""
        async with self._restore_lock:
            if self._restored:
                return
            self._restored = True
            if self._snapshot is not None:
                self.apps.restore(await self._snapshot.load())
                self.adoption.restore()

    def mark_inventories_stale(self) -> None:
        """Rebuild every app's inventory from the cluster before its next reconcile, and plan syncs in
        progress again (on becoming leader: another replica may have applied objects meanwhile)."""
        self.apps.forget_cluster()

    async def write_state(self) -> bool:
        """Write a full snapshot now (the final write at shutdown: the journal is empty after it);
        False when it failed."""
        if self._snapshot is None or not self._restored:
            return False
        return await self._snapshot.write(full=True)

    def start(self) -> None:
        """Start the state writer and every app's loop (again, after `halt`)."""
        self.running = True
        if self.notifications is not None:
            self.notifications.sending = True  # only the leader tells anyone anything
        if self._snapshot is not None:
            self._tasks.spawn("state-writer", self._snapshot.run())
        for worker in self.apps.workers.values():
            self.spawn_loop(worker)

    def spawn_loop(self, worker: AppWorker) -> None:
        if self.running and self.runs(worker.spec.name) and self._tasks.named(f"app:{worker.spec.name}") is None:
            self._tasks.spawn(f"app:{worker.spec.name}", self.loops.run(worker))

    async def cancel_loop(self, worker: AppWorker, why: str, *, within: float | None = None) -> None:
        """End one app's loop (its reconcile in flight is cancelled); requests waiting get `why`.
        With `within`: a loop that has not ended by then is logged, with where it waits, and left."""
        loop = self._tasks.named(f"app:{worker.spec.name}")
        if loop is not None:
            loop.cancel()
            done, _ = await asyncio.wait([loop], timeout=within)
            if not done:
                log.error("the application's loop did not end within %.0fs of being cancelled; it can no "
                          "longer write", within or 0.0, extra={"app": worker.spec.name, "stack": _stack_of(loop)})
        worker.abandon(self._not_running(worker.spec.name, why))

    async def halt(self) -> None:
        """Cancel every loop at once, in-flight reconciles included: the leader lease was lost.
        Cancellation lands at each reconcile's next await, before its next write; a sync in
        progress stays in the app's state. Waiting manual syncs get an error result; `start` resumes."""
        self.running = False
        if self.notifications is not None:
            self.notifications.sending = False
        tasks, self._tasks = self._tasks, TaskSet()
        await tasks.shutdown()
        for worker in self.apps.workers.values():
            worker.abandon(self._not_running(worker.spec.name, "this agent lost the leader lease"))

    async def stop(self, *, drain_timeout: float = 8.0) -> None:
        """Stop polling, let in-flight reconciles finish (bounded), then cancel what is left. A sync in
        progress stops at the step it is in; the next start carries it on."""
        self.running = False
        self._tasks.wind_down()  # app loops end on their own now: not "exited unexpectedly"
        self.loops.stopping.set()
        for worker in self.apps.workers.values():
            worker.wake.set()
        if not await self.loops.drained(drain_timeout):
            log.warning("reconciles still running after %.0fs; cancelling them", drain_timeout)
        await self._tasks.shutdown()
        await self.reconciler.close()
        for worker in self.apps.workers.values():
            worker.abandon(self._not_running(worker.spec.name, "the agent is stopping"))

    # ------------------------------------------------------------- one reconcile by hand

    async def reconcile_once(self, name: str, request: OperationRequest | None = None) -> ReconcileResult | None:
        """One reconcile of one app, recorded like any other, with a sync it starts stepped until it
        has ended (for the CLI and tests)."""
        worker = self.apps.workers.get(name)
        if worker is None:
            return None
        result = await self.loops.run_once(worker, request)
        while result.running:
            worker.wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(OPERATION_POLL):
                    await worker.wake.wait()
            result = await self.loops.run_once(worker, None)
        return result

    async def ensure_inventory(self, worker: AppWorker) -> AgentError | None:
        """The app's inventory, rebuilt from the cluster unless known; the error when it cannot be."""
        return await self.apps.ensure_inventory(worker.spec.name, self.reconciler)

    def _not_running(self, app: str, message: str) -> ReconcileResult:
        return not_running(self.apps.state(app), app, message)


def _everywhere(name: str) -> bool:
    return True


def _stack_of(task: asyncio.Task[Any]) -> str:
    buffer = io.StringIO()
    task.print_stack(file=buffer)
    return buffer.getvalue()
