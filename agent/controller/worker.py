"""One app's scheduling: when it runs next, who waits for it, one operation at a time.

What the app *is* (its AppState) lives in the AppTable; a worker only knows when and why
its app is reconciled next.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field

from agent.config import AppSpec
from agent.controller.reconcile import ReconcileResult
from agent.model import OperationRequest

ERROR_RETRY_MIN = 2.0  # the first retry after a failed reconcile; doubles up to the poll interval
OPERATION_POLL = 1.0  # while a sync runs, its next step comes at the latest after this (watch events come sooner)
MAX_QUEUED_REQUESTS = 4  # distinct manual requests waiting per app; identical ones share one place


@dataclass
class PendingRequest:
    """A person's request and the answer they wait for (the result once its sync has ended)."""

    request: OperationRequest
    answers: list[asyncio.Future[ReconcileResult]] = field(default_factory=list)

    def answer(self, result: ReconcileResult) -> None:
        for future in self.answers:
            if not future.done():
                future.set_result(result)



class Wake:
    """asyncio.Event's set, clear, is_set and wait, without the deque an Event makes at once: ten
    thousand apps, one each, nearly always with no one waiting or one."""

    __slots__ = ("_flag", "_waiters")

    def __init__(self) -> None:
        self._flag = False
        self._waiters: list[asyncio.Future[None]] = []

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        if self._flag:
            return
        self._flag = True
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._flag = False

    async def wait(self) -> None:
        if self._flag:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if waiter in self._waiters:  # cancelled (a timeout): not woken
                self._waiters.remove(waiter)


# Shared by every worker with no request waiting, never appended to (see AppWorker.enqueue): a
# deque takes over 600 bytes, ten thousand of them 6 MB, for requests that are rare.
_NO_REQUESTS: deque[PendingRequest] = deque(maxlen=0)


class AppWorker:
    def __init__(self, spec: AppSpec) -> None:
        self.spec = spec
        self.wake = Wake()
        self.lock = asyncio.Lock()  # one reconcile at a time per app
        self.requests: deque[PendingRequest] = _NO_REQUESTS  # a deque of its own once one is queued
        self.serving: PendingRequest | None = None  # a request whose sync operation is still running
        self.failures = 0  # reconciles failed in a row
        self.retry_at: float | None = None  # when the automated policy's next retry is due
        self.reconciled = False  # by this process (a status restored from the snapshot does not count)
        self.webhook_pending = False  # a push webhook woke it: the next automatic sync is `webhook`
        self.crash = ""  # the last unexpected failure, so its traceback is logged once, not on every retry
        # Its project's rules changed: the next reconcile counts sync attempts afresh, as for a new commit
        # (a sync the old rules refused is tried again under the new ones).
        self.rules_changed = False
        # Why the app is not run (an adopted Argo CD definition that was refused): every reconcile
        # reports it, `Unknown`, and nothing of the app is applied.
        self.refusal = ""

    def enqueue(self, request: OperationRequest, answer: asyncio.Future[ReconcileResult]) -> bool:
        """Queue a request (joining an identical one already waiting); False when the queue is full."""
        for pending in self.requests:
            if pending.request == request:
                pending.answers.append(answer)
                return True
        if len(self.requests) >= MAX_QUEUED_REQUESTS:
            return False
        if self.requests is _NO_REQUESTS:
            self.requests = deque()
        self.requests.append(PendingRequest(request, [answer]))
        self.wake.set()
        return True

    def abandon(self, result: ReconcileResult) -> None:
        """Answer every waiting request with `result` (the app stops being served)."""
        waiting = [*([self.serving] if self.serving else []), *self.requests]
        self.serving, self.requests = None, _NO_REQUESTS
        for pending in waiting:
            pending.answer(result)


def next_delay(*, failures: int, retry_at: float | None, running: bool, now: float, poll_interval: float,
               poll_jitter: float, fraction: float) -> float:
    """Seconds until the app's next reconcile when nothing wakes it sooner. Pure.

    After failures, back off (2 s doubling up to the poll interval, ±10%), a sync in progress too
    (its cluster may be down: a watch event or the cluster's return wakes it sooner); a running
    sync is stepped again soon; otherwise the poll interval plus jitter, or earlier when a retry
    is due. `fraction` is a random number in [0, 1).
    """
    if failures:
        backoff = ERROR_RETRY_MIN * 2 ** (failures - 1)
        return float(min(backoff, poll_interval) * (0.9 + 0.2 * fraction))
    if running:
        return OPERATION_POLL
    delay = poll_interval + poll_jitter * fraction
    if retry_at is not None:
        delay = min(delay, max(0.0, retry_at - now))
    return delay
