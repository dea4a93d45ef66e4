"""What a reconcile reads: the desired objects at a revision, the live objects, the dry runs that
compare them, and objects read back after a sync. The decisions are agent.engine's.

Live objects come from the watch cache when it covers every kind the app uses (no API call);
otherwise from labelled LISTs and GETs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from agent import APP_LABEL
from agent.argocd import is_definition, split_definitions
from agent.config import AppSpec
from agent.controller.claims import ClaimIndex
from agent.engine.desired import DesiredState, desired_state, tracking_owner
from agent.engine.fingerprint import fingerprints, proven_unchanged, resource_version
from agent.engine.plan import make_plan
from agent.errors import KubeError, KubeUnreachable
from agent.kube import KubeClient
from agent.kube.watch import WatchCache
from agent.model import AppState, Kind, KubeObject, Manifest, ObjectRef, Plan, PlannedObject, Revision
from agent.render import Renderer
from agent.tasks import bounded

CONCURRENT_CALLS = 8  # dry runs and reads of one app at once


@dataclass(frozen=True)
class Observation:
    """An app compared with the cluster at one revision."""

    revision: Revision
    live: Mapping[ObjectRef, KubeObject]
    prints: Mapping[ObjectRef, str]  # fingerprints of the desired objects
    plan: Plan
    kinds: frozenset[Kind]  # kinds desired now, plus those used before (prune candidates hide there)
    definitions: tuple[Manifest, ...] = ()  # Argo CD definitions in the render: adopted, never applied


class Observer:
    def __init__(self, *, kube: KubeClient, renderer: Renderer, watch: WatchCache | None) -> None:
        self.kube, self.renderer, self.watch = kube, renderer, watch

    async def observe(self, app: AppSpec, state: AppState, revision: Revision, *, prune: bool | None = None,
                      claims: ClaimIndex | None = None, adopt_existing: bool = True) -> Observation:
        """Render, place, read live, and plan: dry runs only for objects not proven unchanged. `claims`
        tells what other apps declare (the ownership rules need it)."""
        definitions, rendered = await self.rendered(app, revision)
        desired = rendered.objects
        kinds = frozenset({(o["apiVersion"], o["kind"]) for o in desired} | state.kinds)
        expected = frozenset(entry.ref for entry in state.inventory)
        live = await self.live(app, desired, kinds, adopt_existing=adopt_existing, expected=expected)
        # An Argo CD definition this app applied before it was adopted as configuration (labelled, with
        # Argo CD's CRDs installed) is no prune candidate: deleting an Application cascades in Argo CD.
        live = {ref: obj for ref, obj in live.items() if not is_definition(obj)}
        prints = fingerprints(desired, app.ignore_differences)
        proven = proven_unchanged(prints, live, state.applied)
        compared = [obj for obj in desired if ObjectRef.of(obj) in live and ObjectRef.of(obj) not in proven]
        predicted, errors = await self.dry_runs(compared)
        await self._catch_up(live, predicted, compared)
        owners = {tracking_owner(obj) for obj in live.values()}  # the apps the ownership rules ask about
        known = claims.claims(app.name, {*live, *prints}, owners=owners) if claims is not None else None
        plan = make_plan(app.name, desired, live, predicted, policy=app.sync_policy, ignore=app.ignore_differences,
                         dry_run_errors=errors, prune=prune, proven=proven, hooks=rendered.hooks,
                         warnings=rendered.warnings, claims=known, adopt_existing=adopt_existing)
        return Observation(revision, live, prints, plan, kinds, definitions)

    async def desired(self, app: AppSpec, revision: Revision) -> DesiredState:
        return (await self.rendered(app, revision))[1]

    async def rendered(self, app: AppSpec, revision: Revision) -> tuple[tuple[Manifest, ...], DesiredState]:
        """The Argo CD definitions in the app's render (adopted as configuration by the controller: never
        applied, pruned or listed, so no Argo CD CRD is needed), and the desired state of the rest."""
        definitions, manifests = split_definitions(await self.renderer.render(app, revision))
        crd_scopes = _declared_crd_scopes(manifests)
        namespaced: dict[Kind, bool | None] = {}
        for api_version, kind in sorted({(m.obj["apiVersion"], m.obj["kind"]) for m in manifests}):
            resource = await self.kube.resource(api_version, kind)
            scope = resource.namespaced if resource else crd_scopes.get((api_version.rpartition("/")[0], kind))
            namespaced[(api_version, kind)] = scope
        return tuple(definitions), desired_state(
            app.name, manifests, namespace=app.namespace,
            is_namespaced=lambda api_version, kind: namespaced.get((api_version, kind)))

    async def live(self, app: AppSpec, desired: Sequence[KubeObject], kinds: Iterable[Kind], *,
                   adopt_existing: bool = True, expected: frozenset[ObjectRef] = frozenset()
                   ) -> dict[ObjectRef, KubeObject]:
        """Everything labelled for this app (one LIST per kind), plus desired objects labelled for another
        app or not labelled yet.

        Where listing across all namespaces is forbidden, the namespaces the desired objects
        use and the destination namespace are listed one by one.
        """
        if await self._watching(kinds):
            assert self.watch is not None
            # The cache holds every labelled object of these kinds, whichever app's; a desired object it
            # lacks is new, or not labelled yet (which the apply adopts, unless adopting is refused:
            # then it is looked for), or so recent the watch has not shown it yet (`expected`).
            cached = self.watch.objects(app.name, kinds)
            for obj in desired:
                ref = ObjectRef.of(obj)
                if ref not in cached:
                    found = self.watch.get(obj["apiVersion"], ref)
                    # The app's own object missing from the cache: just written and not seen yet by
                    # the watch, or deleted by someone. A GET tells, instead of a create that is none.
                    if found is None and (ref in expected or not adopt_existing):
                        found = await self.kube.get(obj)
                    if found is not None:
                        cached[ref] = found
            return cached
        live: dict[ObjectRef, KubeObject] = {}
        namespaces = ({obj["metadata"].get("namespace") or "" for obj in desired} - {""}) | {app.namespace}
        for api_version, kind in sorted(kinds):
            for obj in await self.kube.list_labelled(api_version, kind, f"{APP_LABEL}={app.name}",
                                                     namespaces=namespaces):
                live[ObjectRef.of(obj)] = obj
        for obj in desired:
            ref = ObjectRef.of(obj)
            if ref not in live and await self.kube.resource(obj["apiVersion"], obj["kind"]) is not None:
                found = await self.kube.get(obj)
                if found is not None:
                    live[ref] = found
        return live

    async def _watching(self, kinds: Iterable[Kind]) -> bool:
        """Whether the watch cache covers every kind (starting watches for new ones)."""
        if self.watch is None:
            return False
        results = [await self.watch.track(api_version, kind) for api_version, kind in sorted(kinds)]
        return all(results)

    async def dry_runs(self, objects: Sequence[KubeObject]) -> tuple[dict[ObjectRef, KubeObject],
                                                                      dict[ObjectRef, str]]:
        """The server's dry-run apply of each object, or why it was refused."""
        predicted: dict[ObjectRef, KubeObject] = {}
        errors: dict[ObjectRef, str] = {}

        async def dry_run(obj: KubeObject) -> None:
            try:
                predicted[ObjectRef.of(obj)] = await self.kube.apply(obj, dry_run=True)
            except KubeError as exc:
                errors[ObjectRef.of(obj)] = str(exc)

        await bounded(objects, dry_run, limit=CONCURRENT_CALLS)
        return predicted, errors

    async def _catch_up(self, live: dict[ObjectRef, KubeObject], predicted: Mapping[ObjectRef, KubeObject],
                        compared: Sequence[KubeObject]) -> None:
        """Read again the objects that changed between the (cached) live copy and their dry run: a
        dry run keeps the stored resourceVersion, so a different one means the cache is behind (a
        controller just updated the object), and comparing the two would find a change nobody made."""
        stale = [obj for obj in compared if ObjectRef.of(obj) in predicted
                 and resource_version(predicted[ObjectRef.of(obj)]) != resource_version(live[ObjectRef.of(obj)])]

        async def refresh(obj: KubeObject) -> None:
            try:
                fresh = await self.kube.get(obj)
            except KubeError:
                return
            if fresh is not None:
                live[ObjectRef.of(obj)] = fresh

        await bounded(stale, refresh, limit=CONCURRENT_CALLS)

    async def read(self, obj: PlannedObject, written: KubeObject | None) -> KubeObject | None:
        """The object's current state: the newer of the watch cache's copy and what we wrote (the
        cache may lag our own write by a moment; the next event brings it up to date). A GET
        only for kinds the cache does not cover."""
        if self.watch is not None and self.watch.synced([(obj.desired["apiVersion"], obj.ref.kind)]):
            cached = self.watch.get(obj.desired["apiVersion"], obj.ref)
            if written is None or _not_older(cached, written):
                return cached
            return written
        return await self.kube.get(obj.desired)

    async def read_back(self, plan: Plan, written: Mapping[ObjectRef, KubeObject]) -> dict[ObjectRef, KubeObject]:
        """Every desired object as it is now, for health after a sync. An object that cannot be read
        keeps what the plan saw of it."""
        live = {obj.ref: obj.live for obj in plan.objects if obj.live is not None}
        live.update(written)

        async def read(obj: PlannedObject) -> None:
            try:
                current = await self.read(obj, written.get(obj.ref))
            except (KubeError, KubeUnreachable):
                return
            if current is None:
                live.pop(obj.ref, None)
            else:
                live[obj.ref] = current

        await bounded(plan.objects, read, limit=CONCURRENT_CALLS)
        return live


def _not_older(cached: KubeObject | None, written: KubeObject) -> bool:
    """Whether the cached object is the written version or a later one. resourceVersions are
    opaque, but the API server's are etcd revisions: compare them as numbers when they are."""
    if cached is None:
        return False
    have, want = resource_version(cached), resource_version(written)
    return have == want or (have.isdigit() and want.isdigit() and int(have) > int(want))


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
