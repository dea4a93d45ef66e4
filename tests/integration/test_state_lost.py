"""Corrupt or lost state (issue 8): the backup is used, else the inventory is rebuilt from the
cluster with labelled LISTs before anything can be pruned, and nothing is deleted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from agent.model import InventoryEntry, ObjectRef, SyncPolicy, SyncStatus
from tests.integration.helpers import configmap
from tests.integration.state_helpers import StateHarness
from tests.support.gitserver import WorkTree


def secret(name: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                           "stringData": {"token": "s3cr3t"}})


def _corrupt(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(bytes(data[: len(data) // 3]))
    else:
        data[len(data) // 2] ^= 0x10
        path.write_bytes(bytes(data))


async def _synced_with_backup(app: StateHarness) -> None:
    """Synced once, then a snapshot and its backup on disk."""
    assert (await app.reconcile()).sync is not None
    assert app.controller is not None
    assert await app.controller.write_state()
    assert await app.controller.write_state()
    assert (app.state_dir / "state.json.bak").exists()


def _load_results(app: StateHarness) -> dict[str, float]:
    return {sample.labels["result"]: sample.value for family in app.metrics.state_loads.collect()
            for sample in family.samples if sample.name.endswith("_total")}


async def _uids(kube: Any, namespace: str, *names: tuple[str, str]) -> dict[str, str]:
    found = {}
    for kind, name in names:
        live = await kube.get({"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}})
        assert live is not None, f"{kind}/{name} was deleted"
        found[name] = live["metadata"]["uid"]
    return found


async def test_bit_flipped_snapshot_loads_the_backup(state_app: Any, repo: WorkTree) -> None:
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"k": "v"})}, "one")
    app: StateHarness = await state_app(SyncPolicy(prune=True))
    await _synced_with_backup(app)
    _corrupt(app.state_dir / "state.json", "flip")

    restarted = await app.restart()
    await restarted.restore()
    assert _load_results(app) == {"backup": 1.0}
    status = restarted.status(app.name)
    assert status is not None and status.sync_status is SyncStatus.SYNCED
    assert len(restarted.history(app.name) or ()) == 1
    result = await app.reconcile()
    assert result.sync is None and app.requests("delete") == 0


async def test_both_corrupt_rebuilds_the_inventory_and_deletes_nothing(state_app: Any, repo: WorkTree, kube: Any,
                                                                       namespace: str) -> None:
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"k": "v"}), "app/token.yaml": secret("token")}, "one")
    app: StateHarness = await state_app(SyncPolicy(prune=True, self_heal=True))
    await _synced_with_backup(app)
    before = await _uids(kube, namespace, ("ConfigMap", "settings"), ("Secret", "token"))
    _corrupt(app.state_dir / "state.json", "truncate")
    _corrupt(app.state_dir / "state.json.bak", "flip")

    restarted = await app.restart()
    await restarted.restore()
    assert _load_results(app) == {"empty": 1.0}
    assert restarted.history(app.name) == ()
    result = await app.reconcile()
    assert result.sync is None and result.sync_status is SyncStatus.SYNCED
    assert app.requests("delete") == 0
    assert await _uids(kube, namespace, ("ConfigMap", "settings"), ("Secret", "token")) == before
    state = app.controller.state(app.name) if app.controller else None
    assert state is not None
    assert set(state.inventory) == {InventoryEntry("v1", ObjectRef("", "ConfigMap", namespace, "settings")),
                                    InventoryEntry("v1", ObjectRef("", "Secret", namespace, "token"))}
    assert app.controller is not None and await app.controller.write_state()
    assert (await app.restart()) is not None
    assert (await app.reconcile()).sync is None
    assert _load_results(app) == {"primary": 1.0}  # a good snapshot again


async def test_lost_state_still_finds_objects_of_kinds_git_no_longer_declares(
    state_app: Any, repo: WorkTree, kube: Any, namespace: str
) -> None:
    repo.commit_and_push({"app/cm.yaml": configmap("settings", {"k": "v"}), "app/token.yaml": secret("token")}, "one")
    app: StateHarness = await state_app(SyncPolicy(prune=False))
    await _synced_with_backup(app)
    for path in app.state_dir.glob("state.json*"):
        path.write_bytes(b"\x00" * 100)
    repo.commit_and_push({"app/token.yaml": None}, "drop the only Secret")

    await app.restart()
    result = await app.reconcile()
    # Only the rebuilt inventory knows this app ever had a Secret: the render has none.
    assert result.plan is not None and len(result.plan.requires_pruning) == 1
    assert result.sync_status is SyncStatus.OUT_OF_SYNC
    state = app.controller.state(app.name) if app.controller else None
    assert state is not None and ("v1", "Secret") in state.kinds
    assert app.requests("delete") == 0
    await _uids(kube, namespace, ("Secret", "token"))
