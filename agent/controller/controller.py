"""Scheduling: one loop per app, polling with jitter, refreshes and manual syncs on request.

One operation at a time per app (its own loop runs it); at most
`max_concurrent_reconciles` apps reconcile at once. The controller is the single
writer of every AppStatus; it builds them from ReconcileResults in `_record`.
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
from agent.controller.reconcile import Kind, OperationRequest, Reconciler, ReconcileResult
from agent.engine.autosync import LastSync
from agent.metrics import Metrics
from agent.model import AppStatus, Condition, ConditionType, ObjectRef, ResourceState, SyncStatus
from agent.source import normalize_url, push_matches_revision
from agent.tasks import TaskSet

log = logging.getLogger(__name__)

ERROR_RETRY_MIN = 2.0


class _AppWorker:
    """What the controller remembers about one app between reconciles."""

    def __init__(self, spec: AppSpec) -> None:
        self.spec = spec
        self.wake = asyncio.Event()
        self.lock = asyncio.Lock()  # one operation at a time per app
        self.failures = 0
        self.reconciled = False
        self.last_sync: LastSync | None = None
        self.kinds: frozenset[Kind] = frozenset()
        self.diffs: dict[ObjectRef, str] = {}
        self.retry_at: float | None = None
        self.requests: list[tuple[OperationRequest, asyncio.Future[ReconcileResult]]] = []


class Controller:
    def __init__(self, settings: Settings, reconciler: Reconciler, metrics: Metrics, *,
                 random_fraction: Callable[[], float] = random.random) -> None:
        self._settings = settings
        self._reconciler = reconciler
        self._metrics = metrics
        self._random = random_fraction
        self._slots = asyncio.Semaphore(settings.agent.max_concurrent_reconciles)
        self._workers = {spec.name: _AppWorker(spec) for spec in settings.applications}
        self._statuses = {spec.name: AppStatus(name=spec.name) for spec in settings.applications}
        self._tasks = TaskSet()
        self._stopping = asyncio.Event()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

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

    @property
    def all_reconciled(self) -> bool:
        return all(worker.reconciled for worker in self._workers.values())

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
                worker.wake.set()
                names.append(name)
        return names

    async def sync_now(self, name: str, request: OperationRequest) -> ReconcileResult | None:
        """Run a manual sync (or dry run) through the app's own loop and wait for its result."""
        worker = self._workers.get(name)
        if worker is None:
            return None
        future: asyncio.Future[ReconcileResult] = asyncio.get_running_loop().create_future()
        worker.requests.append((request, future))
        worker.wake.set()
        return await future

    def start(self) -> None:
        for name, worker in self._workers.items():
            self._tasks.spawn(f"app:{name}", self._loop(worker))

    async def stop(self, *, drain_timeout: float = 8.0) -> None:
        """Stop polling, let in-flight reconciles finish (bounded), then cancel what is left."""
        self._stopping.set()
        for worker in self._workers.values():
            worker.wake.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=drain_timeout)
        except TimeoutError:
            log.warning("reconciles still running after %.0fs; cancelling them", drain_timeout)
        await self._tasks.shutdown()
        for worker in self._workers.values():
            for _, future in worker.requests:
                future.cancel()

    # ------------------------------------------------------------- the loop

    async def reconcile_once(self, name: str, request: OperationRequest | None = None) -> ReconcileResult | None:
        """One reconcile of one app, recorded like any other (for the CLI and tests)."""
        worker = self._workers.get(name)
        return None if worker is None else await self._run_once(worker, request)

    async def _run_once(self, worker: _AppWorker, request: OperationRequest | None) -> ReconcileResult:
        async with worker.lock, self._slots:
            self._in_flight += 1
            self._idle.clear()
            try:
                result = await self._reconciler.reconcile(worker.spec, last=worker.last_sync, request=request,
                                                          kinds=worker.kinds)
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()
            self._record(worker, result, request)
        return result

    async def _loop(self, worker: _AppWorker) -> None:
        while not self._stopping.is_set():
            worker.wake.clear()
            request, future = worker.requests.pop(0) if worker.requests else (None, None)
            result = await self._run_once(worker, request)
            if future is not None and not future.done():
                future.set_result(result)
            if self._stopping.is_set():
                return
            if worker.requests:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.wake.wait(), timeout=self._next_delay(worker))

    def _next_delay(self, worker: _AppWorker) -> float:
        agent = self._settings.agent
        if worker.failures:
            backoff = ERROR_RETRY_MIN * 2 ** (worker.failures - 1)
            return float(min(backoff, agent.poll_interval) * (0.9 + 0.2 * self._random()))
        delay = agent.poll_interval + agent.poll_jitter * self._random()
        if worker.retry_at is not None:
            delay = min(delay, max(0.0, worker.retry_at - time.time()))
        return delay

    # ------------------------------------------------------------- status

    def _record(self, worker: _AppWorker, result: ReconcileResult, request: OperationRequest | None) -> None:
        worker.reconciled = True
        if result.error is not None:
            worker.failures += 1
            status = self._error_status(result)
            log.error("reconcile failed", extra={"app": result.app, "error": str(result.error)})
            outcome = "error"
        else:
            worker.failures = 0
            worker.kinds = result.kinds
            worker.diffs = result.diffs
            worker.retry_at = result.decision.retry_at if result.decision else None
            if result.sync is not None:
                worker.last_sync = _next_last_sync(worker.last_sync, result, manual=request is not None)
                self._metrics.observe_sync(result.app, result.sync.phase, result.sync.finished - result.sync.started)
            status = self._result_status(result)
            outcome = "synced" if result.sync else "compared"
            self._log_result(result, status)
        self._statuses[result.app] = status
        self._metrics.reconcile_duration.labels(result.app).observe(result.duration)
        self._metrics.reconcile_total.labels(result.app, outcome).inc()
        self._metrics.observe_status(status, dest_namespace=worker.spec.namespace)

    def _error_status(self, result: ReconcileResult) -> AppStatus:
        previous = self._statuses[result.app]
        return replace(
            previous, sync_status=SyncStatus.UNKNOWN, revision=previous.revision or result.revision,
            message=str(result.error), conditions=(Condition(ConditionType.COMPARISON_ERROR, str(result.error)),),
            reconciled_at=result.started,
        )

    def _result_status(self, result: ReconcileResult) -> AppStatus:
        previous = self._statuses[result.app]
        sync = result.sync
        messages = []
        if sync is not None and sync.message:
            messages.append(sync.message)
        if result.requires_pruning:
            messages.append(f"{result.requires_pruning} resources require pruning")
        if sync is None and result.sync_status is SyncStatus.OUT_OF_SYNC and result.decision:
            messages.append(result.decision.reason)
        return AppStatus(
            name=result.app, sync_status=result.sync_status, health_status=result.health_status,
            revision=result.revision, message="; ".join(messages), conditions=result.conditions,
            operation_phase=sync.phase if sync else previous.operation_phase,
            changes=sync.changes if sync else previous.changes, reconciled_at=result.started,
            resources=tuple(ResourceState(r.ref, r.sync_status, r.health.status, r.health.message)
                            for r in result.resources),
        )

    def _log_result(self, result: ReconcileResult, status: AppStatus) -> None:
        extra = {"app": result.app, "duration": round(result.duration, 3),
                 "revision": result.revision.sha if result.revision else "",
                 "sync_status": status.sync_status.value, "health_status": status.health_status.value}
        if result.sync is not None:
            log.info("synced", extra={**extra, "changes": result.sync.changes.counts()})
        else:
            log.debug("compared", extra=extra)


def _next_last_sync(last: LastSync | None, result: ReconcileResult, *, manual: bool) -> LastSync:
    """Count attempts per revision; a manual sync or a new revision starts the count again."""
    assert result.sync is not None and result.revision is not None
    same = last is not None and last.revision == result.revision.sha and not manual
    attempts = last.attempts + 1 if same and last is not None else 1
    return LastSync(result.revision.sha, result.sync.phase, attempts, result.sync.finished)

