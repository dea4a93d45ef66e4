"""What the controller remembers about one app, how it becomes status, and how it is saved and restored."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace

from agent.config import AppSpec
from agent.controller.reconcile import Kind, OperationRequest, ReconcileResult
from agent.errors import UnexpectedError
from agent.model import (
    AppliedVersion,
    AppStatus,
    AutoSyncPause,
    Condition,
    ConditionType,
    HistoryEntry,
    InventoryEntry,
    LastSync,
    ObjectRef,
    ResourceState,
    SyncStatus,
    SyncTrigger,
)
from agent.state import AppRecord

log = logging.getLogger("agent.controller.controller")  # the events' logger name stays the controller's

MAX_WAITING_REQUESTS = 4  # distinct manual operations queued per app; identical ones share one


class QueueFull(Exception):
    """An app has as many distinct manual operations waiting as it may; the caller should retry later."""


class AppWorker:
    """One app's memory between reconciles; the controller is its only writer."""

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
        self.applied: dict[ObjectRef, AppliedVersion] = {}
        self.inventory: tuple[InventoryEntry, ...] = ()
        self.history: tuple[HistoryEntry, ...] = ()  # newest first
        self.pause: AutoSyncPause | None = None
        self.pause_changes = 0  # bumped by rollback and resume, so a reconcile in flight does not undo them
        self.tracked_sha = ""  # the commit the tracked revision resolved to at the last automatic reconcile
        self.needs_inventory = True  # until restored from a snapshot or rebuilt from the cluster
        self.webhook_pending = False  # a push webhook woke it: the next automatic sync is `webhook`
        self.crash = ""  # the last unexpected failure, so its traceback is logged once, not on every retry

    def enqueue(self, request: OperationRequest) -> asyncio.Future[ReconcileResult]:
        """The future of `request`'s result: that of an identical request still waiting (as refreshes
        coalesce), else of a newly queued one. QueueFull past MAX_WAITING_REQUESTS: a caller must not
        be able to queue work, and memory, without end."""
        for queued, waiting in self.requests:
            if queued == request and not waiting.done():
                return waiting
        if len(self.requests) >= MAX_WAITING_REQUESTS:
            raise QueueFull(f"application {self.spec.name} already has {len(self.requests)} operations waiting; "
                            "try again once they are done")
        future: asyncio.Future[ReconcileResult] = asyncio.get_running_loop().create_future()
        self.requests.append((request, future))
        self.wake.set()
        return future

    def restore(self, record: AppRecord) -> AppStatus:
        """Take over a record from the snapshot; returns the status to serve until the first reconcile."""
        self.last_sync = record.last_sync
        self.tracked_sha = record.tracked_sha
        self.kinds = record.kinds
        self.inventory = record.inventory
        self.applied = dict(record.applied)
        self.history = record.history
        self.pause = record.status.paused
        self.needs_inventory = False
        return replace(record.status, name=self.spec.name)

    def record(self, status: AppStatus) -> AppRecord:
        return AppRecord(status=status, last_sync=self.last_sync, tracked_sha=self.tracked_sha, kinds=self.kinds,
                         inventory=self.inventory, applied=dict(self.applied), history=self.history)


def next_last_sync(last: LastSync | None, result: ReconcileResult, *, manual: bool) -> LastSync:
    """Count attempts per revision; a manual sync or a new revision starts the count again."""
    assert result.sync is not None and result.revision is not None
    same = last is not None and last.revision == result.revision.sha and not manual
    attempts = last.attempts + 1 if same and last is not None else 1
    return LastSync(result.revision.sha, result.sync.phase, attempts, result.sync.finished)


def error_status(previous: AppStatus, result: ReconcileResult) -> AppStatus:
    kind = ConditionType.UNKNOWN_ERROR if isinstance(result.error, UnexpectedError) else ConditionType.COMPARISON_ERROR
    return replace(
        previous, sync_status=SyncStatus.UNKNOWN, revision=previous.revision or result.revision,
        message=str(result.error), conditions=(Condition(kind, str(result.error)),), reconciled_at=result.started,
    )


def crashed_result(app: str, exc: Exception, *, started: float) -> ReconcileResult:
    """The result of a reconcile that raised what nothing expected: an error, like a git or render one."""
    text = " ".join(str(exc).split())[:500]
    error = UnexpectedError(f"unexpected {type(exc).__name__} while reconciling"
                            + (f": {text}" if text else "") + " (the agent's log has the traceback)")
    return ReconcileResult(app, started, time.time() - started, error=error)


def result_status(previous: AppStatus, result: ReconcileResult) -> AppStatus:
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


def log_result(result: ReconcileResult, status: AppStatus, trigger: SyncTrigger) -> None:
    extra = {"app": result.app, "duration": round(result.duration, 3),
             "revision": result.revision.sha if result.revision else "",
             "sync_status": status.sync_status.value, "health_status": status.health_status.value}
    if result.sync is not None:
        log.info("synced", extra={**extra, "changes": result.sync.changes.counts(), "trigger": trigger.value,
                                  "author": result.revision.author if result.revision else ""})
    else:
        log.debug("compared", extra=extra)
