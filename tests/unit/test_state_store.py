"""AppState's JSON form and the StateStore: load with fallback per app, coalesced writes, metrics."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace
from pathlib import Path

from agent.metrics import Metrics
from agent.model import (
    AppliedVersion,
    AppState,
    AppStatus,
    AutoSyncPause,
    Change,
    ChangeAction,
    ChangeReason,
    ChangeSet,
    Condition,
    ConditionType,
    HealthStatus,
    HistoryEntry,
    HookRun,
    HookType,
    InventoryEntry,
    LastSync,
    ObjectRef,
    OperationPhase,
    ResourceState,
    Revision,
    SyncOperation,
    SyncStatus,
    SyncTrigger,
)
from agent.state import StateStore, state_from_dict, state_to_dict

CM = ObjectRef("", "ConfigMap", "shop", "settings")
DEPLOY = ObjectRef("apps", "Deployment", "shop", "api")


def full_record(name: str = "shop", *, history: int = 2) -> AppState:
    status = AppStatus(
        name=name, sync_status=SyncStatus.SYNCED, health_status=HealthStatus.PROGRESSING,
        revision=Revision("a" * 40, "main", "Dev <dev@example.com>", "first", 1700000000.0),
        message="m", conditions=(Condition(ConditionType.SYNC_ERROR, "boom"),),
        operation_phase=OperationPhase.SUCCEEDED,
        changes=ChangeSet((Change(CM, ChangeAction.CREATED), Change(DEPLOY, ChangeAction.FAILED, "bad"),
                           Change(DEPLOY, ChangeAction.SKIPPED, "requires pruning: off",
                                  ChangeReason.REQUIRES_PRUNING))),
        reconciled_at=1700000001.5,
        resources=(ResourceState(CM, SyncStatus.SYNCED, HealthStatus.HEALTHY),
                   ResourceState(DEPLOY, SyncStatus.OUT_OF_SYNC, HealthStatus.PROGRESSING, "rolling")),
    )
    migrate = HookRun(HookType.PRE_SYNC, ObjectRef("batch", "Job", "shop", "migrate-"),
                      ObjectRef("batch", "Job", "shop", "migrate-aaaaaaa-presync-1700000004"), "batch/v1", -1,
                      OperationPhase.SUCCEEDED, "Job completed", deleted=True)
    entries = tuple(
        HistoryEntry(i, f"{i:040x}", "Dev", f"commit {i}", SyncTrigger.WEBHOOK, 10.0 * i, 10.0 * i + 1,
                     OperationPhase.SUCCEEDED, created=i, configured=1, pruned=0, failed=0, hooks=(migrate,))
        for i in range(history, 0, -1)
    )
    return AppState(
        name=name, status=status, pause=AutoSyncPause("rolled back to aaaaaaa", "b" * 40, 1700000002.0),
        operation=SyncOperation(status.revision or Revision("a" * 40), SyncTrigger.MANUAL, prune=True, manual=True,
                                started=1700000004.0, hooks=(migrate,), failure="PreSync hook failed",
                                resources=(CM,)),
        last_sync=LastSync("a" * 40, OperationPhase.FAILED, 2, 1700000003.0), tracked_sha="b" * 40,
        kinds=frozenset({("v1", "ConfigMap"), ("apps/v1", "Deployment")}),
        inventory=(InventoryEntry("apps/v1", DEPLOY), InventoryEntry("v1", CM)),
        applied={CM: AppliedVersion("sha256:" + "c" * 64, "123")}, history=entries,
    )


def test_state_round_trips_through_json() -> None:
    state = full_record()
    assert state_from_dict("shop", json.loads(json.dumps(state_to_dict(state)))) == state


def test_empty_state_round_trips() -> None:
    state = AppState.new("new")
    assert state_from_dict("new", json.loads(json.dumps(state_to_dict(state)))) == state


def test_transient_parts_are_not_kept() -> None:
    """The operation's plan and what it wrote, the diffs and the unchanged mark are learned again."""
    state = full_record()
    assert state.operation is not None
    encoded = state_to_dict(replace(state, diffs={CM: "diff"},
                                    operation=replace(state.operation, prints={CM: "x"}, step=3)))
    loaded = state_from_dict("shop", json.loads(json.dumps(encoded)))
    assert loaded.diffs == {} and loaded.operation is not None
    assert loaded.operation.step == 0 and loaded.operation.prints == {} and loaded.operation.plan is None


def test_a_snapshot_from_before_app_states_keeps_its_pause() -> None:
    """Earlier snapshots kept the pause inside the status and had no operation."""
    encoded = state_to_dict(full_record())
    pause = encoded.pop("pause")
    del encoded["operation"]
    encoded["status"]["paused"] = pause
    encoded["status"]["name"] = "shop"
    for change in encoded["status"]["changes"]:
        del change[6:]
    loaded = state_from_dict("shop", encoded)
    assert loaded.pause == full_record().pause and loaded.operation is None


def test_a_snapshot_from_before_hooks_loads_without_them() -> None:
    encoded = state_to_dict(full_record())
    for key in ("hooks", "failure", "resources"):
        del encoded["operation"][key]
    for entry in encoded["history"]:
        del entry["hooks"]
    loaded = state_from_dict("shop", encoded)
    assert loaded.operation is not None and loaded.operation.hooks == () and loaded.operation.failure == ""
    assert all(entry.hooks == () for entry in loaded.history)


async def test_store_writes_and_loads_records(tmp_path: Path) -> None:
    metrics = Metrics()
    store = StateStore(tmp_path, observer=metrics)
    store.update("shop", state_to_dict(full_record()))
    assert await store.write()
    loaded = await StateStore(tmp_path, observer=metrics).load()
    assert loaded.source == "primary" and not loaded.lost
    assert loaded.states == {"shop": full_record()}
    text = metrics.exposition().decode()
    assert 'gitops_agent_state_load_total{result="primary"} 1.0' in text
    assert 'gitops_agent_state_write_total{result="succeeded"} 1.0' in text


async def test_a_malformed_app_record_is_dropped_alone(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.update("good", state_to_dict(full_record("good")))
    broken = state_to_dict(full_record("bad"))
    broken["status"]["sync_status"] = "Sideways"
    store.update("bad", broken)
    await store.write()
    loaded = await StateStore(tmp_path).load()
    assert set(loaded.states) == {"good"}
    assert any("app bad" in problem and "Sideways" in problem for problem in loaded.problems)


async def test_lost_state_is_reported_and_counted(tmp_path: Path) -> None:
    metrics = Metrics()
    absent = await StateStore(tmp_path, observer=metrics).load()
    assert absent.source == "absent" and absent.lost
    (tmp_path / "state.json").write_bytes(b"junk")
    (tmp_path / "state.json.bak").write_bytes(b"junk")
    empty = await StateStore(tmp_path, observer=metrics).load()
    assert empty.source == "empty" and empty.lost and empty.states == {}
    text = metrics.exposition().decode()
    assert 'gitops_agent_state_load_total{result="absent"} 1.0' in text
    assert 'gitops_agent_state_load_total{result="empty"} 1.0' in text


async def test_updates_are_coalesced_into_few_writes(tmp_path: Path) -> None:
    store = StateStore(tmp_path, interval=0.2)
    writer = asyncio.create_task(store.run(), name="state-writer")
    try:
        started = time.monotonic()
        while time.monotonic() - started < 0.5:
            for i in range(50):
                store.update(f"app-{i}", state_to_dict(full_record(f"app-{i}", history=1)))
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
    finally:
        writer.cancel()
    # ~2,500 updates in 0.5 s: one write per 0.2 s interval, plus the one that caught the last update.
    assert 2 <= store.writes <= 5, store.writes
    loaded = await StateStore(tmp_path).load()
    assert len(loaded.states) == 50


async def test_a_failed_write_keeps_the_old_snapshot_and_is_retried(tmp_path: Path) -> None:
    metrics = Metrics()
    directory = tmp_path / "state"
    directory.mkdir()
    store = StateStore(directory, observer=metrics)
    store.update("shop", state_to_dict(full_record(history=1)))
    assert await store.write()
    # The directory vanished under the agent: every write fails, an append to the journal as a full one.
    store.file.directory = store.journal.directory = tmp_path / "gone"
    store.update("shop", state_to_dict(full_record(history=3)))
    assert not await store.write()
    assert 'gitops_agent_state_write_total{result="failed"} 1.0' in metrics.exposition().decode()
    assert (await StateStore(directory).load()).states["shop"].history == full_record(history=1).history
    store.file.directory = store.journal.directory = directory
    assert await store.write()
    assert len((await StateStore(directory).load()).states["shop"].history) == 3
