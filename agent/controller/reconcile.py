"""One reconcile of one app: fetch → render → place → apply → health → result.

A git, render or YAML error stops the reconcile before anything is applied.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from agent.config import AppSpec
from agent.engine.desired import desired_objects
from agent.engine.health import Health, aggregate, object_health
from agent.engine.sync import apply_objects
from agent.errors import AgentError
from agent.kube import KubeClient
from agent.model import ChangeSet, HealthStatus, KubeObject, ObjectRef, Revision, SyncStatus
from agent.render import Kustomize, Manifest, is_kustomization, load_manifests
from agent.source import GitSource


@dataclass(frozen=True)
class ResourceStatus:
    ref: ObjectRef
    sync_status: SyncStatus
    health: Health


@dataclass(frozen=True)
class ReconcileResult:
    """Everything one reconcile learned; the controller turns it into an AppStatus."""

    app: str
    started: float
    duration: float
    revision: Revision | None = None
    changes: ChangeSet = field(default_factory=ChangeSet)
    resources: tuple[ResourceStatus, ...] = ()
    error: AgentError | None = None

    @property
    def sync_status(self) -> SyncStatus:
        if self.error is not None:
            return SyncStatus.UNKNOWN
        if self.changes.failed():
            return SyncStatus.OUT_OF_SYNC
        return SyncStatus.SYNCED

    @property
    def health_status(self) -> HealthStatus:
        return aggregate(r.health.status for r in self.resources)


class Reconciler:
    def __init__(self, *, source: GitSource, kube: KubeClient, kustomize: Kustomize) -> None:
        self._source = source
        self._kube = kube
        self._kustomize = kustomize

    async def reconcile(self, app: AppSpec) -> ReconcileResult:
        started, clock = time.time(), time.monotonic()
        revision: Revision | None = None
        try:
            revision = await self._fetch(app)
            desired = await self._desired(app, revision)
            outcome = await apply_objects(self._kube, desired, app=app.name, revision=revision.sha)
        except AgentError as exc:
            return ReconcileResult(app.name, started, time.monotonic() - clock, revision=revision, error=exc)
        failed = {change.ref for change in outcome.changes.failed()}
        resources = tuple(
            ResourceStatus(
                ref=ref,
                sync_status=SyncStatus.OUT_OF_SYNC if ref in failed else SyncStatus.SYNCED,
                health=object_health(outcome.live.get(ref)),
            )
            for ref in (ObjectRef.of(obj) for obj in desired)
        )
        return ReconcileResult(app.name, started, time.monotonic() - clock, revision=revision,
                               changes=outcome.changes, resources=resources)

    async def _fetch(self, app: AppSpec) -> Revision:
        sha = await self._source.resolve(app.repo, app.revision)
        return await self._source.fetch(app.repo, sha, ref=app.revision)

    async def _desired(self, app: AppSpec, revision: Revision) -> list[KubeObject]:
        manifests = await self._render(app, revision)
        kinds = {(m.obj["apiVersion"], m.obj["kind"]) for m in manifests}
        namespaced: dict[tuple[str, str], bool | None] = {}
        for api_version, kind in sorted(kinds):
            resource = await self._kube.resource(api_version, kind)
            namespaced[(api_version, kind)] = None if resource is None else resource.namespaced
        return desired_objects(
            app.name, manifests, namespace=app.namespace,
            is_namespaced=lambda api_version, kind: namespaced.get((api_version, kind)),
        )

    async def _render(self, app: AppSpec, revision: Revision) -> list[Manifest]:
        exported = await self._source.export(app.repo, revision, app.path)
        if not is_kustomization(exported.files):
            return await asyncio.to_thread(load_manifests, exported.files)
        # A kustomization may reach bases elsewhere in the repository: render from the whole tree.
        whole = await self._source.export(app.repo, revision, "")
        return await self._kustomize.build(whole.files, app.path)
