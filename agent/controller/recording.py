"""Each reconcile's outcome, stored and accounted for: the AppTable gets the state, the metrics the
counts, the log the events, the worker what schedules its next reconcile."""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from agent.controller.apps import AppTable
from agent.controller.reconcile import Outcome, ReconcileResult, failed_outcome
from agent.controller.worker import AppWorker
from agent.engine.autosync import retry_due
from agent.errors import UnexpectedError
from agent.metrics import Metrics
from agent.model import AppState, OperationPhase, SyncTrigger

log = logging.getLogger("agent.controller.controller")  # the events' logger name stays the controller's


def crashed(worker: AppWorker, base: AppState, exc: Exception, *, started: float) -> Outcome:
    """An exception nothing expected: the app's error (an UnknownError condition); its traceback is
    logged once per kind of failure, not on every retry."""
    text = " ".join(str(exc).split())[:500]
    error = UnexpectedError(f"unexpected {type(exc).__name__} while reconciling" + (f": {text}" if text else "")
                            + " (the agent's log has the traceback)")
    signature = f"{type(exc).__name__}: {exc}"
    if signature != worker.crash:
        log.error("reconcile raised %s", type(exc).__name__, exc_info=exc,
                  extra={"app": worker.spec.name, "error": str(error)})
    worker.crash = signature
    return failed_outcome(worker.spec.name, base, error, started=started, duration=time.time() - started)


def automatic_trigger(worker: AppWorker) -> SyncTrigger:
    """What started an automatic reconcile: a push webhook that woke the app, or the poll."""
    trigger = SyncTrigger.WEBHOOK if worker.webhook_pending else SyncTrigger.AUTO
    worker.webhook_pending = False
    return trigger


def _extra(result: ReconcileResult, stored: AppState) -> dict[str, object]:
    """What a log line about a recorded reconcile says."""
    return {"app": result.app, "duration": round(result.duration, 3),
            "revision": result.revision.sha if result.revision else "",
            "sync_status": stored.status.sync_status.value, "health_status": stored.status.health_status.value}


class Recorder:
    """Stores each reconcile's outcome in the AppTable; counts, logs and schedules from it."""

    def __init__(self, apps: AppTable, metrics: Metrics) -> None:
        self.apps, self._metrics = apps, metrics

    def record(self, worker: AppWorker, base: AppState, outcome: Outcome, shown: AppState, trigger: SyncTrigger, *,
               dry_run: bool) -> None:
        """Store `shown` (the outcome's state as the API shows it); count, log and schedule from the outcome."""
        result, name = outcome.result, worker.spec.name
        worker.reconciled = True
        unchanged = result.reused and replace(base.status, reconciled_at=None) == replace(
            outcome.state.status, reconciled_at=None) and base.pause == outcome.state.pause
        stored = self.apps.store(base, shown, persist=not unchanged)  # a poll alone is not written
        if result.error is not None:
            worker.failures += 1
            log.error("reconcile failed", extra={"app": name, "error": str(result.error)})
            kind = "error"
        else:
            worker.failures = 0
            kind = "synced" if result.sync else "syncing" if result.running else "compared"
        if not result.blocked:  # a refused manual sync leaves the schedule (a window's opening) as it was
            worker.retry_at = result.decision.retry_at if result.decision else None
        if result.sync is not None and result.sync.phase is not OperationPhase.SUCCEEDED:
            # The decision was taken before this sync failed: its retry is due after the backoff,
            # not at the next poll.
            worker.retry_at = retry_due(worker.spec.sync_policy, stored.last_sync)
        if base.pause is not None and outcome.state.pause is None:  # lifted by the reconcile itself
            log.warning("auto-sync resumed: a new commit arrived", extra={"app": name, "revision": stored.tracked_sha})
        self._metrics.observe_reconcile(name, kind, result.duration)
        if result.sync is not None:
            self._metrics.observe_sync(name, result.sync.phase, result.sync.finished - result.sync.started)
            entry = stored.history[0] if stored.history else None  # the sync just recorded: who asked for it
            log.info("synced", extra={**_extra(result, stored), "changes": result.sync.changes.counts(),
                                      "trigger": trigger.value,
                                      "author": result.revision.author if result.revision else "",
                                      "initiated_by": entry.initiated_by if entry else ""})
        elif result.blocked:
            log.warning("sync refused by a sync window", extra={**_extra(result, stored), "error": result.blocked})
        else:
            if dry_run:  # Argo CD counts a dry run as a sync operation of its own
                phase = OperationPhase.ERROR if result.error is not None else OperationPhase.SUCCEEDED
                self._metrics.observe_sync(name, phase, result.duration, dry_run=True)
            if log.isEnabledFor(logging.DEBUG):  # every poll of every app comes here: no dict for nothing
                log.debug("compared", extra=_extra(result, stored))
