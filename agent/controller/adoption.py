"""Argo CD definitions in an app's render, adopted: its children run as apps, its AppProjects as projects.

After every reconcile that rendered an app (and, with the definitions it remembers, every one
that found nothing moved, so that ApplicationSets see new directories in git), the app's
`Application`, `AppProject` and `ApplicationSet` objects are parsed, the sets generated (their
git generators read through the git source and its cache), and agent.argocd.parent decides;
then the AppTable changes as a reload changes it: new children start, changed ones run with
their new spec, removed ones stop (their objects deleted only with the resources finalizer).
A reconcile that could not render changes nothing: never delete on doubt.

The decision is the parent's `AppState.adopted`, kept in the snapshot: a restart starts every
child again from it, before the parent renders (or while its repository cannot be reached).
The parent's status lists its definitions among its resources (`overlay`); a reconcile compares
only the parent's own objects (`strip`).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace

from agent.argocd import (
    ApplicationSetSpec,
    Generated,
    GenerationFailed,
    GitTree,
    InvalidDefinition,
    NeedsTrees,
    TreeRequest,
    generate,
    parse_app_project,
    parse_definitions,
)
from agent.argocd.parent import ParentDecision, Rendered, decide, project_problem
from agent.argocd.view import child_spec, with_definitions, without_definitions
from agent.config import AppSpec
from agent.config.diff import desired_state_changed
from agent.controller.host import ControllerParts
from agent.controller.reconcile import ReconcileResult
from agent.controller.removal import remove_app
from agent.controller.worker import AppWorker
from agent.errors import AgentError
from agent.model import Adopted, AppState, Manifest, OperationRequest
from agent.source import GitSource

log = logging.getLogger("agent.controller.controller")  # the events' logger name stays the controller's

MAX_NESTING = 8  # parents of parents followed at once (deeper ones follow as their records arrive)
MAX_TREE_ROUNDS = 4  # reads one generation may need: a matrix's second git generator needs a second
TREE_CACHE = 32  # repository listings kept, by (repository, commit)


class Adoption:
    def __init__(self, controller: ControllerParts, *, source: GitSource | None = None) -> None:
        self._controller = controller
        self.source = source
        self._listings: OrderedDict[tuple[str, str], tuple[str, ...]] = OrderedDict()

    # ------------------------------------------------------------- the parent's status

    @staticmethod
    def strip(state: AppState) -> AppState:
        """The state as a reconcile of the parent sees it: its own objects only."""
        if state.adopted is None:
            return state
        return replace(state, status=without_definitions(state.status, state.adopted,
                                                         compared_in_sync=state.unchanged is not None))

    @staticmethod
    def overlay(state: AppState) -> AppState:
        """The state as it is stored and shown: its definitions among its resources and conditions."""
        if state.adopted is None:
            return state
        return replace(state, status=with_definitions(state.status, state.adopted))

    # ------------------------------------------------------------- after a reconcile

    async def reconciled(self, worker: AppWorker, request: OperationRequest | None, result: ReconcileResult) -> None:
        """Adopt what the app's render declares. A failure here is logged and costs only this adoption."""
        if request is not None and request.dry_run:
            return
        state = self._controller.apps.state(worker.spec.name)
        if state is None:
            return
        manifests = result.definitions
        if manifests is None and result.reused and state.adopted is not None:
            manifests = state.adopted.definitions  # nothing moved in the parent: its sets may still move
        if manifests is None or (not manifests and state.adopted is None):
            return  # not rendered this time, or no definitions ever
        try:
            rendered = await self._rendered(worker.spec.name, manifests)
            async with self._controller.reload_lock:
                if self._controller.apps.workers.get(worker.spec.name) is worker:
                    await self._adopt(worker.spec, rendered, prune=_prunes(worker.spec, request))
        except AgentError as exc:
            log.error("definitions not adopted", extra={"app": worker.spec.name, "error": str(exc)})
        except Exception as exc:  # supervision: a fault here must not end the parent's loop
            log.error("adopting definitions raised %s", type(exc).__name__, exc_info=exc,
                      extra={"app": worker.spec.name})

    async def _rendered(self, parent: str, manifests: tuple[Manifest, ...]) -> Rendered:
        definitions = parse_definitions(manifests, parent=parent)
        generated = {app_set.name: await self._generate(app_set) for app_set in definitions.sets}
        return Rendered(manifests=manifests, definitions=definitions, generated=generated)

    async def _adopt(self, parent: AppSpec, rendered: Rendered, *, prune: bool) -> None:
        apps, projects = self._controller.apps, self._controller.projects
        state = apps.state(parent.name)
        assert state is not None
        running = self._children(parent.name)
        decision = decide(parent.name, rendered, previous=state.adopted, running=running,
                          taken=self._taken(parent.name, running), projects=projects.origins(besides=parent.name),
                          prune=prune)
        projects.adopt(parent.name, decision.projects)
        await self._apply(parent.name, running, decision)
        self._record(parent.name, decision.adopted)

    def _record(self, parent: str, adopted: Adopted | None) -> None:
        apps = self._controller.apps
        current = apps.state(parent)
        if current is not None and current.adopted != adopted:
            apps.store(current, self.overlay(replace(self.strip(current), adopted=adopted)))

    def _children(self, parent: str) -> dict[str, AppSpec]:
        """The spec each of the parent's children runs with (a name TOML took over is no child any more)."""
        return {name: worker.spec for name, worker in self._controller.apps.workers.items()
                if worker.spec.parent == parent}

    def _taken(self, parent: str, mine: dict[str, AppSpec]) -> dict[str, str]:
        """Every app name declared elsewhere, and where."""
        return {name: f"{worker.spec.origin} (app {worker.spec.parent})" if worker.spec.parent else worker.spec.origin
                for name, worker in self._controller.apps.workers.items() if name not in mine and name != parent} | {
            parent: f"{self._controller.apps.workers[parent].spec.origin or parent} (the app itself)"}

    async def _apply(self, parent: str, running: dict[str, AppSpec], decision: ParentDecision) -> None:
        controller = self._controller
        for child in decision.adopted.children:
            spec, worker = decision.specs[child.name], controller.apps.workers.get(child.name)
            if worker is None:
                worker = controller.apps.add(spec)
                worker.refusal = child.refusal
                controller.spawn_loop(worker)
                log.info("application adopted", extra={"app": child.name, "parent": parent, "source": child.origin})
                continue
            if worker.spec.parent != parent:  # declared elsewhere meanwhile: never another's app
                continue
            if worker.spec != spec:
                async with worker.lock:
                    controller.apps.respecify(spec, desired_changed=desired_state_changed(worker.spec, spec))
                controller.request_refresh(child.name)
            if worker.refusal != child.refusal:
                worker.refusal = child.refusal
                worker.wake.set()
        removals = {removal.name: removal for removal in decision.removals}
        gone = running.keys() - decision.adopted.names
        for name in sorted(gone):
            worker = controller.apps.workers.get(name)
            if worker is None or worker.spec.parent != parent:
                continue
            removal = removals.get(name)
            await self.remove_child(worker.spec, delete_resources=removal is not None and removal.delete_resources,
                                    why=f"the application is no longer declared by {parent}")
        if gone:
            for worker in controller.apps.workers.values():  # a freed name may be another parent's to adopt
                if worker.spec.name != parent and (state := controller.apps.state(worker.spec.name)) is not None \
                        and state.adopted is not None:
                    worker.wake.set()

    async def remove_child(self, spec: AppSpec, *, delete_resources: bool, why: str) -> None:
        """Stop an app (and, first, the children it declares itself, deleting theirs only along)."""
        await self.parent_removed(spec.name, delete_resources=delete_resources)
        await remove_app(self._controller, spec, delete_resources=delete_resources, why=why)

    # ------------------------------------------------------------- configuration changes

    async def parent_removed(self, parent: str, *, delete_resources: bool) -> None:
        """An app that declared children is going: its children go too. As Argo CD cascades a deleted
        Application: with `delete_resources` each child with the resources finalizer deletes its objects;
        without, every child stops and its objects stay. Its projects are forgotten."""
        controller = self._controller
        state = controller.apps.state(parent)
        if state is None or state.adopted is None:
            return
        for name in sorted(self._children(parent)):
            worker = controller.apps.workers[name]
            await self.remove_child(worker.spec, delete_resources=delete_resources and worker.spec.prune_on_delete,
                                    why=f"the application that declared it, {parent}, is gone")
        controller.projects.adopt(parent, ())

    async def release(self, name: str) -> None:
        """The configuration now declares `name`, which a parent's render declared: the configuration's
        takes over (keeping the app's state and objects); the parent reports the name as taken."""
        controller = self._controller
        worker = controller.apps.workers.get(name)
        if worker is None or not worker.spec.parent:
            return
        parent = worker.spec.parent
        await self.parent_removed(name, delete_resources=False)
        await remove_app(controller, worker.spec, delete_resources=False,
                         why="the configuration declares the application now")
        state = controller.apps.state(parent)
        if state is not None and state.adopted is not None:
            children = tuple(child for child in state.adopted.children if child.name != name)
            self._record(parent, replace(state.adopted, children=children))
            controller.request_refresh(parent)

    # ------------------------------------------------------------- a restart

    def restore(self) -> None:
        """Start every child again from its parent's record (nested parents too), before any render."""
        controller = self._controller
        pending = [state.name for state in controller.apps.states() if state.adopted is not None]
        while pending:
            parent = pending.pop(0)
            state = controller.apps.state(parent)
            if state is None or state.adopted is None:
                continue
            self._restore_projects(parent, state.adopted)
            for child in state.adopted.children:
                if child.name in controller.apps.workers:  # the configuration declares it now
                    continue
                spec, refusal = child_spec(child, parent=parent)
                worker = controller.apps.add(spec)
                worker.refusal = refusal
                controller.spawn_loop(worker)
                child_state = controller.apps.state(child.name)
                if child_state is not None and child_state.adopted is not None:
                    pending.append(child.name)

    # ------------------------------------------------------------- sharding: a parent running elsewhere

    async def follow(self, parent: str, *, depth: int = 0) -> None:
        """Make this replica's children of `parent` those its record (written by the replica running it)
        names: new ones are added (and run here when their buckets are this replica's), changed ones
        respecified, and those gone from it stop here. A child gone from its parent's record was removed
        by a render without it; the replica running the child deletes its objects when its definition
        had the resources finalizer (agent.controller.removal refuses everywhere else)."""
        controller = self._controller
        async with controller.reload_lock:
            state = controller.apps.state(parent)
            if state is None or (state.adopted is None and not self._children(parent)):
                return
            adopted = state.adopted or Adopted()
            self._restore_projects(parent, adopted)
            nested = []
            for child in adopted.children:
                spec, refusal = child_spec(child, parent=parent)
                worker = controller.apps.workers.get(child.name)
                if worker is None:
                    worker = controller.apps.add(spec)
                    controller.spawn_loop(worker)
                elif worker.spec.parent != parent:
                    continue  # declared elsewhere (the configuration): never another's app
                elif worker.spec != spec:
                    async with worker.lock:
                        controller.apps.respecify(spec, desired_changed=desired_state_changed(worker.spec, spec))
                    controller.request_refresh(child.name)
                if worker.refusal != refusal:
                    worker.refusal = refusal
                    worker.wake.set()
                child_state = controller.apps.state(child.name)
                if child_state is not None and child_state.adopted is not None and not controller.runs(child.name):
                    nested.append(child.name)
            for name in sorted(self._children(parent).keys() - adopted.names):
                worker = controller.apps.workers[name]
                await self.remove_child(worker.spec, delete_resources=worker.spec.prune_on_delete,
                                        why=f"the application is no longer declared by {parent}")
        for name in nested if depth < MAX_NESTING else ():
            await self.follow(name, depth=depth + 1)

    def _restore_projects(self, parent: str, adopted: Adopted) -> None:
        projects = self._controller.projects
        elsewhere = projects.origins(besides=parent)
        kept = []
        for manifest in adopted.definitions:
            if manifest.obj.get("kind") != "AppProject":
                continue
            try:
                project = parse_app_project(manifest.obj, file=manifest.source)
            except InvalidDefinition:
                continue
            if project.name not in elsewhere and not project_problem(project):
                kept.append(project)
        projects.adopt(parent, kept)

    # ------------------------------------------------------------- ApplicationSets' git generators

    async def _generate(self, app_set: ApplicationSetSpec) -> Generated | GenerationFailed:
        trees: dict[tuple[str, str], GitTree] = {}
        for _ in range(MAX_TREE_ROUNDS):
            outcome = generate(app_set, trees)
            if not isinstance(outcome, NeedsTrees):
                return outcome
            for request in outcome.requests:
                try:
                    trees[(request.repo, request.revision)] = await self._tree(request,
                                                                               trees.get((request.repo,
                                                                                          request.revision)))
                except AgentError as exc:
                    return GenerationFailed(f"{app_set.origin}: cannot read {request.repo} at {request.revision}: "
                                            f"{exc}")
        return GenerationFailed(f"{app_set.origin}: its generators need more than {MAX_TREE_ROUNDS} reads of git")

    async def _tree(self, request: TreeRequest, known: GitTree | None) -> GitTree:
        """The repository's listing at the revision (kept per commit), and the files asked for."""
        if self.source is None:
            raise AgentError("no git source to read ApplicationSet generators with")
        sha = await self.source.resolve(request.repo, request.revision)
        revision = await self.source.fetch(request.repo, sha, ref=request.revision)
        key = (request.repo, sha)
        files = self._listings.get(key)
        if files is None:
            files = await self.source.list_files(request.repo, revision)
            self._listings[key] = files
            while len(self._listings) > TREE_CACHE:
                self._listings.popitem(last=False)
        contents = dict(known.contents) if known is not None and known.files == files else {}
        missing = [path for path in request.files if path not in contents]
        if missing:
            contents.update(await self.source.read_files(request.repo, revision, missing))
        return GitTree(files=files, contents=contents)


def _prunes(spec: AppSpec, request: OperationRequest | None) -> bool:
    """Whether this reconcile of the parent prunes: an Application gone from its render is removed."""
    if request is None:
        return spec.sync_policy.automated and spec.sync_policy.prune
    if request.resources:  # a selective sync prunes nothing
        return False
    return spec.sync_policy.prune if request.prune is None else request.prune
