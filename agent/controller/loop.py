"""The apps' loops: when each app reconciles, in which slot, and what a reconcile is supervised by.

One loop per app runs its reconciles one at a time: a step of the sync in progress, else
the oldest manual request, else a poll; between them it sleeps until woken (a refresh, a
watch event, a request) or until `next_delay` has passed. At most `max_concurrent_reconciles`
apps of one cluster reconcile at once. The Controller (agent.controller.controller) starts
and stops these loops; this module only runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable

from agent.controller.adoption import Adoption
from agent.controller.host import ControllerParts
from agent.controller.reconcile import Outcome, ReconcileResult, failed_outcome
from agent.controller.recording import Recorder, automatic_trigger, crashed
from agent.controller.worker import AppWorker, PendingRequest, next_delay
from agent.errors import InvalidSpec, NotLeader
from agent.metrics import Metrics
from agent.model import AppState, OperationRequest, SyncTrigger
from agent.shard.acting import acting_for

log = logging.getLogger("agent.controller.controller")  # the events' logger name stays the controller's


def not_running(state: AppState | None, app: str, message: str) -> ReconcileResult:
    """The result a request gets when the app's loop cannot serve it (not leader, stopping, lost)."""
    status = (state or AppState.new(app)).status
    return ReconcileResult(app, time.time(), 0.0, status, error=NotLeader(message))


class AppLoops:
    def __init__(self, controller: ControllerParts, adoption: Adoption, metrics: Metrics, *,
                 random_fraction: Callable[[], float]) -> None:
        self._controller = controller
        self._adoption = adoption
        self._metrics = metrics
        self._random = random_fraction
        # Reconcile slots per cluster (as apps name it): apps of a cluster that hangs hold only its own.
        slots = controller.settings.agent.max_concurrent_reconciles
        self._slots: defaultdict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(slots))
        self._recorder = Recorder(controller.apps, metrics)
        self.stopping = asyncio.Event()
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def drained(self, within: float) -> bool:
        """Wait until no reconcile is in flight; False when `within` seconds passed first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout=within)
        except TimeoutError:
            return False
        return True

    async def run(self, worker: AppWorker) -> None:
        """The app's loop, until the agent stops (or the task is cancelled)."""
        apps = self._controller.apps
        while not self.stopping.is_set():
            worker.wake.clear()
            await self._serve(worker)
            if self.stopping.is_set():
                return
            state = apps.state(worker.spec.name)
            running = state is not None and state.operation is not None
            if worker.requests and not running:
                continue
            agent = self._controller.settings.agent
            delay = next_delay(failures=worker.failures, retry_at=worker.retry_at, running=running, now=time.time(),
                               poll_interval=agent.poll_interval, poll_jitter=agent.poll_jitter,
                               fraction=self._random())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await worker.wake.wait()

    async def _serve(self, worker: AppWorker) -> None:
        """One reconcile: a step of the sync in progress, else the oldest request, else a poll. Its
        own frame: the result is not kept alive while the loop waits for the next wake-up."""
        state = self._controller.apps.state(worker.spec.name)
        if worker.serving is None and worker.requests and state is not None and state.operation is None:
            worker.serving = worker.requests.popleft()
        pending: PendingRequest | None = worker.serving
        fresh = pending is not None and (state is None or state.operation is None)
        try:
            result = await self.run_once(worker, pending.request if pending is not None and fresh else None)
        except asyncio.CancelledError:
            worker.abandon(not_running(state, worker.spec.name, "interrupted: lease lost or stopping"))
            raise
        if pending is not None and not result.running:
            worker.serving = None
            pending.answer(result)

    async def run_once(self, worker: AppWorker, request: OperationRequest | None) -> ReconcileResult:
        """One reconcile of the app under its lock and a slot of its cluster, recorded."""
        controller = self._controller
        await controller.restore()
        async with worker.lock, self._slots[worker.spec.cluster]:
            trigger = automatic_trigger(worker) if request is None else request.trigger
            self._in_flight += 1
            self._idle.clear()
            try:
                with acting_for(worker.spec.name):  # the write gate asks for whom (sharding)
                    base, outcome = await self._reconcile(worker, request, trigger)
            finally:
                self._in_flight -= 1
                if self._in_flight == 0:
                    self._idle.set()
            self._recorder.record(worker, base, outcome, self._adoption.overlay(outcome.state), trigger,
                                  dry_run=request is not None and request.dry_run)
        await self._adoption.reconciled(worker, request, outcome.result)  # outside the lock: it may stop apps
        return outcome.result

    async def _reconcile(self, worker: AppWorker, request: OperationRequest | None,
                         trigger: SyncTrigger) -> tuple[AppState, Outcome]:
        """The reconcile, supervised: an unexpected exception (a bug, a malformed object nobody
        validated) becomes the app's error, logged once with its traceback; the loop goes on."""
        controller, name = self._controller, worker.spec.name
        if worker.rules_changed:  # under the app's lock: no reconcile in flight overwrites this
            worker.rules_changed = False
            controller.apps.forget_attempts(name)
        refusal = worker.refusal  # an adopted definition refused: not run as declared
        failure = None if refusal else await controller.ensure_inventory(worker)
        base = self._adoption.strip(controller.apps.state(name) or AppState.new(name))
        if refusal:  # no render, no API call
            return base, failed_outcome(name, base, InvalidSpec(refusal), started=time.time())
        if failure is not None:
            return base, failed_outcome(name, base, failure, started=time.time())
        started = time.time()
        try:
            with self._metrics.requests_for(name, dry_run=request is not None and request.dry_run):
                outcome = await controller.reconciler.reconcile(worker.spec, base, request, trigger=trigger)
        except Exception as exc:  # supervision: any fault stays this app's, never the loop's end
            return base, crashed(worker, base, exc, started=started)
        worker.crash = ""
        return base, outcome
