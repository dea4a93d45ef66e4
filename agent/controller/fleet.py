"""The reconciler the controller uses when there are several clusters: per app, its cluster, then that
cluster's own Reconciler.

Each cluster gets a Reconciler of its own (its client, watch cache and observer); all share the git
source, the renderer and the health rules. A reconcile first asks the registry for the app's
cluster (agent.kube.clusters): an app naming no known cluster, or one that is down, gets its
outcome at once, without a request, so the apps of a dead cluster never wait for timeouts.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Collection, Iterable, Sequence
from typing import Any

from agent.config import AppSpec
from agent.controller.claims import ClaimIndex
from agent.controller.gate import ProjectLookup
from agent.controller.inventory import RebuiltInventory
from agent.controller.reconcile import Outcome, Reconciler, failed_outcome
from agent.controller.revisions import check_manual_revision
from agent.controller.teardown import Teardown
from agent.engine.health import HealthAssessor
from agent.errors import KubeUnreachable, UnknownCluster
from agent.kube import KubeClient
from agent.kube.clusters import Cluster, ClusterRegistry
from agent.kube.watch import WatchCache
from agent.model import AppState, InventoryEntry, Kind, OperationRequest, RepoSpec, SyncTrigger
from agent.source import GitSource, SourceOptions

MakeReconciler = Callable[[KubeClient, WatchCache], Reconciler]


class FleetReconciler:
    """Satisfies agent.controller.reconcile.AppReconciler."""

    def __init__(self, *, clusters: ClusterRegistry, source: GitSource, make: MakeReconciler) -> None:
        self.clusters = clusters
        self._source = source
        self._make = make
        # A cluster replaced (a Secret changed) or removed takes its Reconciler with it.
        self._reconcilers: weakref.WeakKeyDictionary[Cluster, Reconciler] = weakref.WeakKeyDictionary()
        self._settings: dict[str, Any] | None = None  # the last reconfigure, for Reconcilers made after it
        self._claims: ClaimIndex | None = None  # what every app declares, for the ownership rules
        self._projects: ProjectLookup | None = None  # the controller's projects, by name

    def _for(self, cluster: Cluster) -> Reconciler:
        reconciler = self._reconcilers.get(cluster)
        if reconciler is None:
            assert cluster.kube is not None and cluster.watch is not None  # admitted clusters are connected
            reconciler = self._reconcilers[cluster] = self._make(cluster.kube, cluster.watch)
            if self._settings is not None:
                reconciler.reconfigure(**self._settings)
            if self._claims is not None:
                reconciler.use_claims(self._claims)
            if self._projects is not None:
                reconciler.use_projects(self._projects)
            reconciler.use_cluster(server=cluster.server, name=cluster.name)
        return reconciler

    def use_claims(self, claims: ClaimIndex) -> None:
        """Every cluster's reconciler reads what the other apps declare from the controller's index."""
        self._claims = claims
        for reconciler in self._reconcilers.values():
            reconciler.use_claims(claims)

    def use_projects(self, lookup: ProjectLookup) -> None:
        """Every cluster's reconciler judges its apps by the controller's projects."""
        self._projects = lookup
        for reconciler in self._reconcilers.values():
            reconciler.use_projects(lookup)

    async def reconcile(self, app: AppSpec, state: AppState, request: OperationRequest | None = None, *,
                        trigger: SyncTrigger = SyncTrigger.AUTO) -> Outcome:
        started = time.time()
        try:
            cluster = await self.clusters.admit(app.cluster)
        except (UnknownCluster, KubeUnreachable) as exc:
            return failed_outcome(app.name, state, exc, started=started, duration=time.time() - started)
        return await self._for(cluster).reconcile(app, state, request, trigger=trigger)

    def forget_revisions(self, repo: str) -> None:
        self._source.invalidate(repo)

    async def check_manual_revision(self, app: AppSpec, requested: str, history: Collection[str]) -> None:
        """RevisionRefused unless a manual sync may name `requested` (a question for git alone)."""
        await check_manual_revision(self._source, app, requested, history)

    async def resolve_tracked(self, app: AppSpec) -> str:
        self._source.invalidate(app.repo)
        return await self._source.resolve(app.repo, app.revision)

    async def rebuild_inventories(self, apps: Collection[AppSpec]) -> RebuiltInventory:
        """Each cluster's apps from that cluster's LISTs; raises for the first cluster unknown or down."""
        entries: dict[str, tuple[InventoryEntry, ...]] = {}
        lists = 0
        skipped: tuple[str, ...] = ()
        for name in sorted({app.cluster for app in apps}):
            cluster = await self.clusters.admit(name)
            rebuilt = await self._for(cluster).rebuild_inventories([app for app in apps if app.cluster == name])
            entries.update(rebuilt.entries)
            lists, skipped = lists + rebuilt.lists, (*skipped, *rebuilt.skipped)
        return RebuiltInventory(entries, lists, skipped)

    async def delete_owned(self, app: AppSpec, kinds: Iterable[Kind], namespaces: Iterable[str]) -> Teardown:
        cluster = await self.clusters.admit(app.cluster)
        return await self._for(cluster).delete_owned(app, kinds, namespaces)

    def reconfigure(self, *, source: SourceOptions, repositories: Sequence[RepoSpec], health: HealthAssessor,
                    history_limit: int) -> None:
        self._settings = {"source": source, "repositories": repositories, "health": health,
                          "history_limit": history_limit}
        self._source.reconfigure(source, repositories)
        for reconciler in self._reconcilers.values():
            reconciler.reconfigure(**self._settings)

    async def close(self) -> None:
        """Stop every cluster's watches and probes; close the repositories. Clients close with the registry."""
        await self.clusters.stop()
        self._source.close()
