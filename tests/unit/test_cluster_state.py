"""What an app learned on one cluster is not carried to another; how a cluster's failure shows in status."""

from __future__ import annotations

from dataclasses import replace

from agent.config import AppSpec
from agent.controller.apps import AppTable
from agent.controller.reconcile import failed_outcome
from agent.controller.worker import ERROR_RETRY_MIN, OPERATION_POLL, next_delay
from agent.errors import KubeUnreachable, NotLeader, UnknownCluster
from agent.metrics import Metrics
from agent.model import (
    IN_CLUSTER,
    AppliedVersion,
    AppState,
    AppStatus,
    ConditionType,
    HealthStatus,
    InventoryEntry,
    LastSync,
    ObjectRef,
    OperationPhase,
    Revision,
    SyncOperation,
    SyncStatus,
    SyncTrigger,
)
from agent.state import LoadResult, state_from_dict, state_to_dict

REF = ObjectRef("", "ConfigMap", "payments", "settings")


def learned(name: str = "shop", cluster: str = IN_CLUSTER) -> AppState:
    status = AppStatus(name=name, sync_status=SyncStatus.SYNCED, health_status=HealthStatus.HEALTHY,
                       revision=Revision("a" * 40))
    return AppState(
        name=name, status=status, cluster=cluster, kinds=frozenset({("v1", "ConfigMap")}),
        applied={REF: AppliedVersion("print", "12", "digest")}, inventory=(InventoryEntry("v1", REF),),
        inventory_known=True, last_sync=LastSync("a" * 40, OperationPhase.SUCCEEDED, 1, 5.0),
        operation=SyncOperation(Revision("b" * 40), SyncTrigger.AUTO, prune=False, manual=False, started=1.0),
    )


def test_a_state_moved_to_another_cluster_keeps_only_its_own_record() -> None:
    state = learned()
    assert state.on_cluster(IN_CLUSTER) is state
    moved = state.on_cluster("edge")
    assert moved.cluster == "edge"
    assert (moved.applied, moved.inventory, moved.kinds, moved.inventory_known) == ({}, (), frozenset(), False)
    assert (moved.last_sync, moved.operation) == (None, None)
    assert (moved.status, moved.history) == (state.status, state.history)


def test_the_snapshot_keeps_the_cluster_and_older_snapshots_are_the_home_clusters() -> None:
    record = state_to_dict(learned(cluster="edge"))
    assert record["cluster"] == "edge"
    assert state_from_dict("shop", record).cluster == "edge"
    del record["cluster"]
    assert state_from_dict("shop", record).cluster == IN_CLUSTER


def test_the_table_drops_what_was_learned_on_the_cluster_an_app_left() -> None:
    spec = AppSpec(name="shop", repo="https://git.example.com/shop.git", cluster="edge")
    table = AppTable((spec,), metrics=Metrics(), snapshot=None, dest_server=lambda spec: "https://edge:6443")
    assert table.state("shop") == AppState.new("shop", cluster="edge")
    table.restore(LoadResult("primary", {"shop": learned()}))
    restored = table.state("shop")
    assert restored is not None and restored.cluster == "edge" and restored.applied == {}
    assert not restored.inventory_known, "its inventory on the new cluster is rebuilt before any prune"
    table.store(restored, replace(restored, applied={REF: AppliedVersion("p", "3")}, inventory_known=True))
    table.respecify(replace(spec, cluster=IN_CLUSTER), desired_changed=True)
    back = table.state("shop")
    assert back is not None and (back.cluster, back.applied, back.inventory_known) == (IN_CLUSTER, {}, False)


def test_an_unknown_cluster_is_an_invalid_spec_and_an_unreachable_one_leaves_health_unknown() -> None:
    state = learned()
    unknown = failed_outcome("shop", state, UnknownCluster("there are no clusters with this name: edge"), started=9.0)
    assert unknown.result.status.conditions[0].type is ConditionType.INVALID_SPEC_ERROR
    assert unknown.state.status.health_status is HealthStatus.HEALTHY, "the spec is wrong: the cluster was not asked"
    down = failed_outcome("shop", state, KubeUnreachable("cluster edge is unreachable: refused"), started=9.0)
    assert down.result.status.sync_status is SyncStatus.UNKNOWN
    assert down.result.status.health_status is HealthStatus.UNKNOWN
    assert down.result.status.conditions[0].type is ConditionType.COMPARISON_ERROR
    assert down.result.status.revision == state.status.revision, "the last good revision is kept"
    follower = failed_outcome("shop", state, NotLeader("not the leader"), started=9.0)
    assert follower.result.status.health_status is HealthStatus.HEALTHY


def test_a_sync_in_progress_whose_step_failed_backs_off_like_any_reconcile() -> None:
    common = {"retry_at": None, "now": 0.0, "poll_interval": 180.0, "poll_jitter": 0.0, "fraction": 0.5}
    assert next_delay(failures=0, running=True, **common) == OPERATION_POLL
    assert next_delay(failures=1, running=True, **common) == ERROR_RETRY_MIN
    assert next_delay(failures=3, running=True, **common) == ERROR_RETRY_MIN * 4
