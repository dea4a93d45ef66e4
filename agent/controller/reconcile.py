"""One reconcile of one app: fetch → render → place → compare with live → decide → sync → health.

A git, render or YAML error stops the reconcile before anything is applied or pruned.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from agent import APP_LABEL, TRACKING_ANNOTATION
from agent.config import AppSpec
from agent.controller.inventory import RebuiltInventory, rebuild_inventories
from agent.controller.revisions import check_manual_revision
from agent.controller.teardown import Teardown, delete_owned
from agent.engine.autosync import LastSync, SyncDecision, decide, still_paused
from agent.engine.desired import desired_objects, tracking_id
from agent.engine.diff import unified_diff
from agent.engine.fingerprint import applied_versions, fingerprints, inventory, proven_unchanged, resource_version
from agent.engine.health import Health, HealthAssessor, aggregate
from agent.engine.plan import Action, Plan, PlannedObject, make_plan
from agent.engine.sync import HealthCheck, SyncResult, SyncRunner
from agent.errors import AgentError, KubeError, KubeUnreachable
from agent.kube import KubeClient
from agent.kube.watch import WatchCache
from agent.model import (
    AppliedVersion,
    AutoSyncPause,
    ChangeAction,
    Condition,
    ConditionType,
    HealthStatus,
    InventoryEntry,
    KubeObject,
    ObjectRef,
    OperationPhase,
    RepoSpec,
    Revision,
    SyncStatus,
    SyncTrigger,
)
from agent.render import Manifest, Renderer
from agent.source import GitSource, SourceOptions

Kind = tuple[str, str]  # (apiVersion, kind)
CACHE_POLL, API_POLL = 0.05, 0.2  # seconds between health checks of a wave, from the cache or by GET
LIVE_READS = 8  # concurrent GETs when reading objects back for health after a sync


@dataclass(frozen=True)
class OperationRequest:
    """A sync asked for by a person (API or CLI) rather than by the automated policy."""

    revision: str | None = None  # sync to this revision instead of the app's
    prune: bool | None = None  # override the policy's prune for this sync
    dry_run: bool = False  # plan and diff only
    trigger: SyncTrigger = SyncTrigger.MANUAL  # recorded in the sync history


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
    plan: Plan | None = None
    decision: SyncDecision | None = None
    sync: SyncResult | None = None
    resources: tuple[ResourceStatus, ...] = ()
    diffs: dict[ObjectRef, str] = field(default_factory=dict)
    conditions: tuple[Condition, ...] = ()
    kinds: frozenset[Kind] = frozenset()
    error: AgentError | None = None
    applied: dict[ObjectRef, AppliedVersion] = field(default_factory=dict)  # proofs of sync (see fingerprint)
    inventory: tuple[InventoryEntry, ...] = ()
    pause: AutoSyncPause | None = None  # the auto-sync pause after this reconcile
    reused: bool = False  # nothing moved: the previous result, with health read again from the cache

    @property
    def requires_pruning(self) -> int:
        if self.sync is not None:
            return sum(1 for c in self.sync.changes.entries
                       if c.action is ChangeAction.SKIPPED and c.message.startswith("requires pruning"))
        return len(self.plan.requires_pruning) if self.plan else 0

    @property
    def sync_status(self) -> SyncStatus:
        if self.error is not None or self.plan is None:
            return SyncStatus.UNKNOWN
        if self.sync is None:
            return SyncStatus.OUT_OF_SYNC if self.plan.out_of_sync else SyncStatus.SYNCED
        if self.sync.phase is not OperationPhase.SUCCEEDED or self.requires_pruning:
            return SyncStatus.OUT_OF_SYNC
        return SyncStatus.SYNCED

    @property
    def health_status(self) -> HealthStatus:
        return aggregate(r.health.status for r in self.resources)


class Reconciler:
    def __init__(self, *, source: GitSource, kube: KubeClient, renderer: Renderer,
                 health: HealthAssessor | None = None, watch: WatchCache | None = None) -> None:
        self._source = source
        self._kube = kube
        self._renderer = renderer
        self._health = health or HealthAssessor()
        self._watch = watch
        self._quiet: dict[str, _Quiet] = {}

    async def close(self) -> None:
        """Stop the watches; close the repositories."""
        if self._watch is not None:
            await self._watch.close()
        self._source.close()

    def forget_revisions(self, repo: str) -> None:
        """Drop the shared ls-remote answer for `repo`, so the next reconcile asks the server."""
        self._source.invalidate(repo)

    async def reconcile(self, app: AppSpec, *, last: LastSync | None = None, request: OperationRequest | None = None,
                        kinds: Iterable[Kind] = (), applied: Mapping[ObjectRef, AppliedVersion] | None = None,
                        pause: AutoSyncPause | None = None) -> ReconcileResult:
        """Compare the app with the cluster and, when the policy or the request says so, sync it.

        `applied` holds the proofs of sync of the previous reconcile: objects they cover are
        not dry-run again. `pause` is the app's auto-sync pause; a new commit on the tracked
        revision lifts it (requests neither look at nor change it).
        """
        started, clock = time.time(), time.monotonic()
        revision: Revision | None = None
        epoch = self._watch.epoch(app.name) if self._watch else 0
        touches = self._watch.touches(app.name) if self._watch else 0
        try:
            wanted = request.revision if request and request.revision else app.revision
            sha = await self._source.resolve(app.repo, wanted)
            quiet = self._quiet.pop(app.name, None)
            if request is None and quiet is not None and quiet.still(app, sha, epoch, self._watch):
                return self._unchanged(quiet, started, clock, pause)
            revision = await self._source.fetch(app.repo, sha, ref=wanted)
            desired = await self._desired(app, revision)
            used = {(o["apiVersion"], o["kind"]) for o in desired} | set(kinds)
            live = await self._live(app, desired, used)
            prints = fingerprints(desired, app.ignore_differences)
            plan = await self._plan(app, desired, live, request, proven_unchanged(prints, live, applied or {}))
        except AgentError as exc:
            return ReconcileResult(app.name, started, time.monotonic() - clock, revision=revision, error=exc,
                                   kinds=frozenset(kinds), pause=pause)
        if request is None:
            pause = still_paused(pause, revision.sha)
        decision = _decision(app, plan, revision.sha, last, request, pause)
        sync = await self._sync(app, plan, revision, request) if decision.sync else None
        if sync is not None:
            live = {**live, **sync.live}
        changes = sync.changes if sync is not None else None
        result = ReconcileResult(
            app.name, started, time.monotonic() - clock, revision=revision, plan=plan, decision=decision, sync=sync,
            # What a sync would change matters while it has not run; rendering YAML diffs of what a
            # sync just applied would only cost CPU.
            resources=await self._live_health(plan, live, sync), diffs=_diffs(plan, app) if sync is None else {},
            conditions=_conditions(app.name, plan, sync), kinds=frozenset(used),
            applied=applied_versions(plan, prints, changes=changes, responses=sync.responses if sync else {}),
            inventory=inventory(app.name, plan, changes), pause=pause,
        )
        if request is None and sync is None and not plan.out_of_sync and self._watch is not None \
                and self._watch.synced(used):
            self._quiet[app.name] = _Quiet(app, revision, epoch, _slim(result), touches, self._health)
        return result

    def _unchanged(self, quiet: _Quiet, started: float, clock: float,
                   pause: AutoSyncPause | None) -> ReconcileResult:
        """Nothing moved since the app was last found in sync: the same result, health read from the cache.

        No API call, no render: this is what a poll of an unchanged app costs. Health is
        assessed again only when an object changed at all (status included) since it last was.
        """
        assert self._watch is not None and quiet.result.plan is not None
        name = quiet.spec.name
        touches = self._watch.touches(name)
        if touches != quiet.touches or quiet.health is not self._health:
            live = self._watch.objects(name, quiet.result.kinds)
            resources = _resource_statuses(quiet.result.plan, live, None, self._health.assess)
            quiet = replace(quiet, result=replace(quiet.result, resources=resources), touches=touches,
                            health=self._health)
        self._quiet[name] = quiet
        return replace(quiet.result, started=started, duration=time.monotonic() - clock,
                       pause=still_paused(pause, quiet.revision.sha), diffs={}, reused=True)

    async def _sync(self, app: AppSpec, plan: Plan, revision: Revision, request: OperationRequest | None) -> SyncResult:
        prune = app.sync_policy.prune if request is None or request.prune is None else request.prune
        runner = SyncRunner(self._kube, app.name, app.namespace, revision.sha, app.sync_policy, self._health.assess,
                            author=revision.author, read=self._read if self._watch else None,
                            on_write=self._watch.note_write if self._watch else None,
                            # Health waits read the watch cache, not the API: polling it often is free.
                            poll_interval=CACHE_POLL if self._watch else API_POLL)
        return await runner.run(plan, prune=prune)

    async def _read(self, obj: PlannedObject, written: KubeObject | None) -> KubeObject | None:
        """The object's current state: the newer of the watch cache's copy and what we wrote (the
        cache may lag our own write by a moment; the next event brings it up to date). A GET
        only for kinds the cache does not cover."""
        if self._watch is not None and self._watch.synced([(obj.desired["apiVersion"], obj.ref.kind)]):
            cached = self._watch.get(obj.desired["apiVersion"], obj.ref)
            if written is None or _not_older(cached, written):
                return cached
            return written
        return await self._kube.get(obj.desired)

    async def check_manual_revision(self, app: AppSpec, requested: str, history: Collection[str]) -> None:
        """RevisionRefused unless a manual sync may name `requested` (see agent.controller.revisions)."""
        await check_manual_revision(self._source, app, requested, history)

    async def resolve_tracked(self, app: AppSpec) -> str:
        """The commit the app's tracked revision points to now (asking the server again)."""
        self._source.invalidate(app.repo)
        return await self._source.resolve(app.repo, app.revision)

    async def rebuild_inventories(self, apps: Collection[AppSpec]) -> RebuiltInventory:
        """What each app owns in the cluster, from one labelled LIST per listable type (see inventory)."""
        return await rebuild_inventories(self._kube, [app.name for app in apps],
                                         namespaces={app.namespace for app in apps})

    def reconfigure(self, *, source: SourceOptions, repositories: Sequence[RepoSpec],
                    health: HealthAssessor) -> None:
        """A configuration reload: git credentials, timeouts and limits, and health rules.

        Operations in flight finish with what they started with.
        """
        self._source.reconfigure(source, repositories)
        self._health = health

    async def delete_owned(self, app: AppSpec, kinds: Iterable[Kind], namespaces: Iterable[str]) -> Teardown:
        """Delete what an app removed with `prune_on_delete = true` owns (see teardown)."""
        return await delete_owned(self._kube, app, kinds, namespaces=namespaces)

    async def _desired(self, app: AppSpec, revision: Revision) -> list[KubeObject]:
        manifests = await self._render(app, revision)
        crd_scopes = _declared_crd_scopes(manifests)
        namespaced: dict[Kind, bool | None] = {}
        for api_version, kind in sorted({(m.obj["apiVersion"], m.obj["kind"]) for m in manifests}):
            resource = await self._kube.resource(api_version, kind)
            scope = resource.namespaced if resource else crd_scopes.get((api_version.rpartition("/")[0], kind))
            namespaced[(api_version, kind)] = scope
        return desired_objects(
            app.name, manifests, namespace=app.namespace,
            is_namespaced=lambda api_version, kind: namespaced.get((api_version, kind)),
        )

    async def _render(self, app: AppSpec, revision: Revision) -> list[Manifest]:
        return await self._renderer.render(app, revision)

    async def _live(self, app: AppSpec, desired: Sequence[KubeObject],
                    kinds: Iterable[Kind]) -> dict[ObjectRef, KubeObject]:
        """Everything labelled for this app (one LIST per kind), plus desired objects not labelled yet.

        Where listing across all namespaces is forbidden, the namespaces the desired objects
        use and the destination namespace are listed one by one.
        """
        if await self._watching(kinds):
            assert self._watch is not None
            # The cache holds every labelled object of these kinds; a desired object it lacks is new
            # (or not labelled yet, which the apply adopts).
            return self._watch.objects(app.name, kinds)
        live: dict[ObjectRef, KubeObject] = {}
        namespaces = ({obj["metadata"].get("namespace") or "" for obj in desired} - {""}) | {app.namespace}
        for api_version, kind in sorted(kinds):
            for obj in await self._kube.list_labelled(api_version, kind, f"{APP_LABEL}={app.name}",
                                                      namespaces=namespaces):
                live[ObjectRef.of(obj)] = obj
        for obj in desired:
            ref = ObjectRef.of(obj)
            if ref not in live and await self._kube.resource(obj["apiVersion"], obj["kind"]) is not None:
                found = await self._kube.get(obj)
                if found is not None:
                    live[ref] = found
        return live

    async def _watching(self, kinds: Iterable[Kind]) -> bool:
        """Whether the watch cache covers every kind (starting watches for new ones)."""
        if self._watch is None:
            return False
        results = [await self._watch.track(api_version, kind) for api_version, kind in sorted(kinds)]
        return all(results)

    async def _plan(self, app: AppSpec, desired: Sequence[KubeObject], live: dict[ObjectRef, KubeObject],
                    request: OperationRequest | None, proven: frozenset[ObjectRef]) -> Plan:
        """Dry-run every desired object that exists and is not proven unchanged, then decide per object."""
        predicted: dict[ObjectRef, KubeObject] = {}
        errors: dict[ObjectRef, str] = {}
        for obj in desired:
            ref = ObjectRef.of(obj)
            if ref not in live or ref in proven:
                continue
            try:
                predicted[ref] = await self._kube.apply(obj, dry_run=True)
            except KubeUnreachable:
                raise
            except KubeError as exc:
                errors[ref] = str(exc)
        return make_plan(app.name, desired, live, predicted, policy=app.sync_policy, ignore=app.ignore_differences,
                         dry_run_errors=errors, prune=request.prune if request else None, proven=proven)

    async def _live_health(self, plan: Plan, live: dict[ObjectRef, KubeObject],
                           sync: SyncResult | None) -> tuple[ResourceStatus, ...]:
        """Health of every desired object as the cluster shows it now (absent: Missing).

        Without a sync, `live` is this reconcile's own read of the cluster. After a sync it
        partly holds apply responses, which show an object before its controller has acted,
        so every desired object is read back: from the watch cache (the newer of its copy and
        what was written), or by GET for kinds the cache does not cover.
        """
        if sync is not None:
            live = dict(live)
            read_back = await self._read_back(plan.objects, sync.responses)
            for ref, current in read_back.items():
                if current is None:
                    live.pop(ref, None)
                else:
                    live[ref] = current
        return _resource_statuses(plan, live, sync, self._health.assess)

    async def _read_back(self, objects: Sequence[PlannedObject],
                         written: Mapping[ObjectRef, KubeObject]) -> dict[ObjectRef, KubeObject | None]:
        """The current state of each object (None: not there); an object that cannot be read is
        left out, so its last observation stands."""
        slots = asyncio.Semaphore(LIVE_READS)
        found: dict[ObjectRef, KubeObject | None] = {}

        async def read(obj: PlannedObject) -> None:
            async with slots:
                try:
                    found[obj.ref] = await self._read(obj, written.get(obj.ref))
                except KubeError:
                    return
        await asyncio.gather(*(read(obj) for obj in objects))
        return found


def _not_older(cached: KubeObject | None, written: KubeObject) -> bool:
    """Whether the cached object is the written version or a later one. resourceVersions are
    opaque, but the API server's are etcd revisions: compare them as numbers when they are."""
    if cached is None:
        return False
    have, want = resource_version(cached), resource_version(written)
    return have == want or (have.isdigit() and want.isdigit() and int(have) > int(want))


def _slim(result: ReconcileResult) -> ReconcileResult:
    """The result without the objects it compared: a reused result needs only identities,
    actions and health, and holding every app's live and dry-run objects twice would cost
    memory per app."""
    assert result.plan is not None
    objects = tuple(replace(obj, live=None, predicted=None) for obj in result.plan.objects)
    return replace(result, plan=replace(result.plan, objects=objects, prune=()))


@dataclass(frozen=True)
class _Quiet:
    """An app as it was when last found in sync without syncing. While its spec, the commit its
    revision names and the content of its live objects (the watch cache's epoch) stay the
    same, so does the result."""

    spec: AppSpec
    revision: Revision
    epoch: int
    result: ReconcileResult
    touches: int  # the watch cache's count of any change to the app's objects when `result` was made
    health: HealthAssessor  # the rules its health was assessed with (a reload may change them)

    def still(self, app: AppSpec, sha: str, epoch: int, watch: WatchCache | None) -> bool:
        return (app == self.spec and sha == self.revision.sha and epoch == self.epoch and watch is not None
                and watch.synced(self.result.kinds))


def _decision(app: AppSpec, plan: Plan, revision: str, last: LastSync | None, request: OperationRequest | None,
              pause: AutoSyncPause | None) -> SyncDecision:
    if request is not None:
        return SyncDecision(not request.dry_run, "dry run" if request.dry_run else f"{request.trigger.value} sync")
    return decide(app.sync_policy, out_of_sync=plan.out_of_sync, revision=revision, last=last, now=time.time(),
                  paused=pause)


def _declared_crd_scopes(manifests: Sequence[Manifest]) -> dict[tuple[str, str], bool]:
    """Kinds that CRDs in the same render declare: (group, kind) → namespaced."""
    scopes: dict[tuple[str, str], bool] = {}
    for manifest in manifests:
        obj = manifest.obj
        if obj.get("kind") == "CustomResourceDefinition":
            spec = obj.get("spec") or {}
            kind = (spec.get("names") or {}).get("kind")
            if isinstance(kind, str) and isinstance(spec.get("group"), str):
                scopes[(spec["group"], kind)] = spec.get("scope", "Namespaced") == "Namespaced"
    return scopes


def _resource_statuses(plan: Plan, live: dict[ObjectRef, KubeObject],
                       sync: SyncResult | None, assess: HealthCheck) -> tuple[ResourceStatus, ...]:
    done = (ChangeAction.CREATED, ChangeAction.CONFIGURED, ChangeAction.UNCHANGED)
    applied = {c.ref for c in sync.changes.entries if c.action in done} if sync else set()
    statuses = []
    for obj in plan.objects:
        in_sync = obj.ref in applied or (sync is None and obj.action is Action.UNCHANGED)
        statuses.append(ResourceStatus(obj.ref, SyncStatus.SYNCED if in_sync else SyncStatus.OUT_OF_SYNC,
                                       assess(live.get(obj.ref))))
    return tuple(statuses)


def _diffs(plan: Plan, app: AppSpec) -> dict[ObjectRef, str]:
    """What applying would change, per object that differs (Secret values redacted)."""
    return {
        obj.ref: unified_diff(obj.ref, obj.live, obj.predicted if obj.live is not None else obj.desired,
                              app.ignore_differences)
        for obj in plan.to_apply
    }


def _conditions(app: str, plan: Plan, sync: SyncResult | None) -> tuple[Condition, ...]:
    conditions = []
    for obj in plan.objects:
        owner = ((obj.live or {}).get("metadata", {}).get("annotations") or {}).get(TRACKING_ANNOTATION)
        if owner and owner != tracking_id(app, obj.ref):
            conditions.append(Condition(ConditionType.SHARED_RESOURCE_WARNING,
                                        f"{obj.ref} is also tracked as {owner!r}"))
    if sync is not None and sync.phase is not OperationPhase.SUCCEEDED:
        conditions.append(Condition(ConditionType.SYNC_ERROR, sync.message))
    return tuple(conditions)
