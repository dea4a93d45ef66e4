"""Scheduling: one loop per app, polling with jitter, refreshes on request, bounded concurrency.

The controller is the single writer of every AppStatus; it builds them from
ReconcileResults in `_record`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from agent.config import AppSpec, Settings
from agent.controller.reconcile import Reconciler, ReconcileResult
from agent.metrics import Metrics
from agent.model import AppStatus, Condition, ConditionType, OperationPhase, SyncStatus
from agent.tasks import TaskSet

log = logging.getLogger(__name__)

ERROR_RETRY_MIN = 2.0


class _AppWorker:
    def __init__(self, spec: AppSpec) -> None:
        self.spec = spec
        self.wake = asyncio.Event()
        self.failures = 0
        self.reconciled = False


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

    @property
    def all_reconciled(self) -> bool:
        return all(worker.reconciled for worker in self._workers.values())

    # ------------------------------------------------------------- commands

    def request_refresh(self, name: str) -> bool:
        """Reconcile the app as soon as possible; requests made meanwhile coalesce into one."""
        worker = self._workers.get(name)
        if worker is None:
            return False
        worker.wake.set()
        return True

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

    # ------------------------------------------------------------- the loop

    async def _loop(self, worker: _AppWorker) -> None:
        while not self._stopping.is_set():
            worker.wake.clear()
            async with self._slots:
                if self._stopping.is_set():
                    return
                self._in_flight += 1
                self._idle.clear()
                try:
                    result = await self._reconciler.reconcile(worker.spec)
                finally:
                    self._in_flight -= 1
                    if self._in_flight == 0:
                        self._idle.set()
            self._record(worker, result)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(worker.wake.wait(), timeout=self._next_delay(worker))

    def _next_delay(self, worker: _AppWorker) -> float:
        agent = self._settings.agent
        if worker.failures:
            backoff = ERROR_RETRY_MIN * 2 ** (worker.failures - 1)
            return float(min(backoff, agent.poll_interval) * (0.9 + 0.2 * self._random()))
        return agent.poll_interval + agent.poll_jitter * self._random()

    def _record(self, worker: _AppWorker, result: ReconcileResult) -> None:
        previous = self._statuses[worker.spec.name]
        worker.reconciled = True
        extra = {"app": result.app, "duration": round(result.duration, 3)}
        if result.error is not None:
            worker.failures += 1
            status = AppStatus(
                name=result.app, sync_status=SyncStatus.UNKNOWN, health_status=previous.health_status,
                revision=result.revision or previous.revision, message=str(result.error),
                conditions=(Condition(ConditionType.COMPARISON_ERROR, str(result.error)),),
                operation_phase=OperationPhase.ERROR, changes=previous.changes, reconciled_at=result.started,
            )
            log.error("reconcile failed", extra={**extra, "error": str(result.error)})
            outcome = "error"
        else:
            worker.failures = 0
            failed = result.changes.failed()
            message = f"{len(failed)} of {len(result.changes.entries)} objects failed to apply" if failed else ""
            status = AppStatus(
                name=result.app, sync_status=result.sync_status, health_status=result.health_status,
                revision=result.revision, message=message,
                conditions=tuple(Condition(ConditionType.SYNC_ERROR, f.message) for f in failed),
                operation_phase=OperationPhase.FAILED if failed else OperationPhase.SUCCEEDED,
                changes=result.changes, reconciled_at=result.started,
            )
            revision = result.revision.sha if result.revision else ""
            log.info("reconciled", extra={**extra, "revision": revision, "sync_status": status.sync_status.value,
                                          "health_status": status.health_status.value,
                                          "changes": result.changes.counts()})
            outcome = "failed" if failed else "succeeded"
        self._statuses[result.app] = status
        self._metrics.reconcile_duration.labels(result.app).observe(result.duration)
        self._metrics.reconcile_total.labels(result.app, outcome).inc()
        self._metrics.observe_status(status, dest_namespace=worker.spec.namespace)
