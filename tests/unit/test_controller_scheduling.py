"""The controller's scheduling, with a reconciler of our own: delays, coalescing, requests, stepped syncs,
drain, supervision and stale outcomes. Events drive everything; nothing sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from agent.config import AgentSettings, AppSpec, Settings
from agent.controller import Controller, Outcome, QueueFull, ReconcileResult
from agent.controller.inventory import RebuiltInventory
from agent.controller.teardown import Teardown
from agent.controller.worker import ERROR_RETRY_MIN, MAX_QUEUED_REQUESTS, OPERATION_POLL, next_delay
from agent.engine.health import HealthAssessor
from agent.metrics import Metrics
from agent.model import (
    AppState,
    AutoSyncPause,
    ConditionType,
    Kind,
    ObjectRef,
    OperationRequest,
    RepoSpec,
    Revision,
    SyncOperation,
    SyncStatus,
    SyncTrigger,
)
from agent.source import SourceOptions

POLL = 3600.0  # nothing polls during a test: every reconcile here is asked for


class Script:
    """A reconciler whose reconciles the test holds, steps and breaks at will."""

    def __init__(self) -> None:
        self.calls: list[tuple[OperationRequest | None, SyncTrigger]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.entered = asyncio.Event()
        self.steps = 0  # reconciles that report a sync still running before it ends
        self.fail_next: Exception | None = None
        self.wrote: Callable[[], None] = lambda: None  # what the cluster answers a step's writes with

    async def reconcile(self, app: AppSpec, state: AppState, request: OperationRequest | None = None, *,
                        trigger: SyncTrigger = SyncTrigger.AUTO) -> Outcome:
        self.calls.append((request, trigger))
        self.entered.set()
        await self.gate.wait()
        if self.fail_next is not None:
            error, self.fail_next = self.fail_next, None
            raise error
        revision = Revision("a" * 40)
        running = self.steps > 0
        self.steps = max(self.steps - 1, 0)
        operation = SyncOperation(revision, trigger, prune=False, manual=request is not None, started=0.0) \
            if running else None
        status = replace(state.status, sync_status=SyncStatus.SYNCED, revision=revision,
                         reconciled_at=float(len(self.calls)))
        result = ReconcileResult(app.name, 0.0, 0.0, status, revision=revision, running=running)
        if running:
            self.wrote()
        return Outcome(result, replace(state, status=status, operation=operation))

    def forget_revisions(self, repo: str) -> None:
        return None

    async def check_manual_revision(self, app: AppSpec, requested: str, history: Collection[str]) -> None:
        return None

    async def resolve_tracked(self, app: AppSpec) -> str:
        return "b" * 40

    async def rebuild_inventories(self, apps: Collection[AppSpec]) -> RebuiltInventory:
        return RebuiltInventory({app.name: () for app in apps})

    async def delete_owned(self, app: AppSpec, kinds: Iterable[Kind], namespaces: Iterable[str]) -> Teardown:
        return Teardown()

    def reconfigure(self, *, source: SourceOptions, repositories: Sequence[RepoSpec], health: HealthAssessor,
                    history_limit: int) -> None:
        return None

    async def close(self) -> None:
        return None


def settings(tmp_path: Path) -> Settings:
    agent = AgentSettings(state_dir=tmp_path, poll_interval=POLL, poll_jitter=0.0)
    return Settings(agent=agent, applications=(AppSpec(name="shop", repo="https://git.example.com/shop.git"),))


async def reconciles(script: Script, count: int) -> None:
    """Until `count` reconciles have run to their end (the controller recorded them)."""
    while len(script.calls) < count:
        script.entered.clear()
        await script.entered.wait()
    for _ in range(5):  # let the last one be recorded
        await asyncio.sleep(0)


@pytest.fixture
async def running(tmp_path: Path) -> tuple[Controller, Script]:
    script = Script()
    controller = Controller(settings(tmp_path), script, Metrics())
    controller.start()
    await reconciles(script, 1)  # the first poll of the app
    yield controller, script
    await controller.stop(drain_timeout=1.0)


# ------------------------------------------------------------------ delays (pure)


def test_after_failures_the_delay_doubles_up_to_the_poll_interval() -> None:
    delays = [next_delay(failures=n, retry_at=None, running=False, now=0.0, poll_interval=30.0, poll_jitter=5.0,
                         fraction=0.5) for n in range(1, 7)]
    assert delays == [ERROR_RETRY_MIN, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert next_delay(failures=1, retry_at=None, running=False, now=0.0, poll_interval=30.0, poll_jitter=5.0,
                      fraction=0.0) == pytest.approx(ERROR_RETRY_MIN * 0.9)


def test_a_due_retry_comes_before_the_poll_and_a_running_sync_before_both() -> None:
    common = {"failures": 0, "now": 100.0, "poll_interval": 180.0, "poll_jitter": 30.0, "fraction": 0.5}
    assert next_delay(retry_at=None, running=False, **common) == 195.0
    assert next_delay(retry_at=110.0, running=False, **common) == 10.0
    assert next_delay(retry_at=90.0, running=False, **common) == 0.0
    assert next_delay(retry_at=110.0, running=True, **common) == OPERATION_POLL


# ------------------------------------------------------------------ the loop


async def test_refreshes_during_a_reconcile_coalesce_into_one_more(running: tuple[Controller, Script]) -> None:
    controller, script = running
    script.gate.clear()
    controller.request_refresh("shop")
    await reconciles(script, 2)  # held at the gate
    for _ in range(10):
        controller.request_refresh("shop")
    script.gate.set()
    await reconciles(script, 3)
    assert len(script.calls) == 3, "ten refreshes during one reconcile made exactly one more"


async def test_a_manual_sync_is_stepped_until_it_ends_and_then_answered(running: tuple[Controller, Script]) -> None:
    controller, script = running
    script.steps = 2
    # What the watch cache does when a step's writes come back as events: wake the app.
    script.wrote = lambda: controller.on_live_change("shop", ObjectRef("apps", "Deployment", "shop", "api"), False)
    result = await controller.sync_now("shop", OperationRequest(revision="main"))
    assert result is not None and not result.running
    requests = [request for request, _ in script.calls[1:]]
    assert requests == [OperationRequest(revision="main"), None, None], "the request starts it; steps follow"
    state = controller.state("shop")
    assert state is not None and state.operation is None


async def test_identical_requests_share_one_place_and_a_full_queue_is_refused(
    running: tuple[Controller, Script]
) -> None:
    controller, script = running
    script.gate.clear()
    controller.request_refresh("shop")
    await reconciles(script, 2)
    waiting = [asyncio.create_task(controller.sync_now("shop", OperationRequest(revision=f"r{i}")))
               for i in range(MAX_QUEUED_REQUESTS)]
    same = asyncio.create_task(controller.sync_now("shop", OperationRequest(revision="r0")))
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        await controller.sync_now("shop", OperationRequest(revision="one-too-many"))
    script.gate.set()
    results = await asyncio.gather(*waiting, same)
    assert all(result is not None and result.error is None for result in results)
    assert results[-1] is results[0], "the identical request got the answer of the one it joined"
    assert len(script.calls) == 2 + MAX_QUEUED_REQUESTS


async def test_stop_lets_the_reconcile_in_flight_finish(running: tuple[Controller, Script]) -> None:
    controller, script = running
    script.gate.clear()
    controller.request_refresh("shop")
    await reconciles(script, 2)
    stopping = asyncio.create_task(controller.stop(drain_timeout=5.0))
    await asyncio.sleep(0)
    assert not stopping.done(), "stop waits for the reconcile in flight"
    script.gate.set()
    await stopping
    state = controller.state("shop")
    assert state is not None and state.status.reconciled_at == 2.0, "its outcome was recorded"


async def test_an_unexpected_exception_becomes_the_apps_error_and_the_loop_goes_on(
    running: tuple[Controller, Script]
) -> None:
    controller, script = running
    script.fail_next = TypeError("unhashable type: 'list'")
    controller.request_refresh("shop")
    await reconciles(script, 2)
    state = controller.state("shop")
    assert state is not None and state.status.sync_status is SyncStatus.UNKNOWN
    assert state.status.conditions[0].type is ConditionType.UNKNOWN_ERROR
    assert "unexpected TypeError while reconciling" in state.status.conditions[0].message
    controller.request_refresh("shop")
    await reconciles(script, 3)
    state = controller.state("shop")
    assert state is not None and state.status.sync_status is SyncStatus.SYNCED


async def test_a_resume_while_a_reconcile_runs_is_not_undone_by_its_outcome(
    running: tuple[Controller, Script]
) -> None:
    controller, script = running
    controller.apps.set_pause("shop", AutoSyncPause("rolled back to aaaaaaa", "b" * 40, 0.0))
    script.gate.clear()
    controller.request_refresh("shop")
    await reconciles(script, 2)  # computes its outcome from the paused state
    assert await controller.resume("shop") is True
    script.gate.set()
    await reconciles(script, 3)  # the resume's refresh
    state = controller.state("shop")
    assert state is not None and state.pause is None
