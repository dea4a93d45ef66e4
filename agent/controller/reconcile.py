"""One reconcile of one app: `Reconciler.reconcile(spec, state, request) -> Outcome(result, state)`.

    first, always:        the app's project (agent.controller.gate): missing, or refusing the
                          repository or destination? nothing is fetched, applied or pruned
    no operation running: resolve → (unchanged since last time? done) → fetch → render →
                          place → compare with live → judge by the project → decide (sync
                          windows hold an automated sync) → start a sync, or report
    an operation running: judge its plan by the project again, advance it one step
                          (agent.engine.sync); when it ends, read the objects back for health
                          and record the sync

A git, render or YAML error stops the reconcile before anything is applied or pruned; the
last good status is kept with the error as a condition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import Protocol

from agent.config import AppSpec
from agent.controller.claims import ClaimIndex
from agent.controller.gate import ProjectGate, ProjectLookup
from agent.controller.inventory import RebuiltInventory, rebuild_inventories
from agent.controller.observe import Observation, Observer
from agent.controller.outcome import Outcome, ReconcileResult, failed_outcome
from agent.controller.post_delete import run_post_delete
from agent.controller.revisions import check_manual_revision
from agent.controller.teardown import Teardown, delete_owned
from agent.engine import status as statuses
from agent.engine.autosync import SyncDecision, decide, held_by_window, still_paused
from agent.engine.fingerprint import applied_versions, inventory
from agent.engine.health import HealthAssessor, aggregate
from agent.engine.history import append_history, history_entry
from agent.engine.sync import Step, SyncRunner
from agent.errors import AgentError
from agent.kube import KubeClient
from agent.kube.watch import WatchCache
from agent.model import (
    AppState,
    HookType,
    Kind,
    OperationPhase,
    OperationRequest,
    Plan,
    RepoSpec,
    ResourceState,
    SyncOperation,
    SyncTrigger,
    UnchangedSince,
)
from agent.render import Renderer
from agent.source import GitSource, SourceOptions

__all__ = ["AppReconciler", "Outcome", "ReconcileResult", "Reconciler", "failed_outcome"]

log = logging.getLogger("agent.controller.teardown")


class AppReconciler(Protocol):
    """What the controller asks of the reconciler (`Reconciler` below; tests of scheduling give their own)."""

    async def reconcile(self, app: AppSpec, state: AppState, request: OperationRequest | None = None, *,
                        trigger: SyncTrigger = SyncTrigger.AUTO) -> Outcome: ...

    def forget_revisions(self, repo: str) -> None: ...

    async def check_manual_revision(self, app: AppSpec, requested: str, history: Collection[str]) -> None: ...

    async def resolve_tracked(self, app: AppSpec) -> str: ...

    async def rebuild_inventories(self, apps: Collection[AppSpec]) -> RebuiltInventory: ...

    async def delete_owned(self, app: AppSpec, kinds: Iterable[Kind], namespaces: Iterable[str]) -> Teardown: ...

    def reconfigure(self, *, source: SourceOptions, repositories: Sequence[RepoSpec], health: HealthAssessor,
                    history_limit: int) -> None: ...

    async def close(self) -> None: ...


class Reconciler:
    def __init__(self, *, source: GitSource, kube: KubeClient, renderer: Renderer,
                 health: HealthAssessor | None = None, watch: WatchCache | None = None,
                 history_limit: int = 50, claims: ClaimIndex | None = None) -> None:
        self._source = source
        self._kube = kube
        self._health = health or HealthAssessor()
        self._watch = watch
        self._observer = Observer(kube=kube, renderer=renderer, watch=watch)
        self._history_limit = history_limit
        self._claims = claims or ClaimIndex()  # an empty one knows no other app: nothing is handed over
        self._gate = ProjectGate()  # only the `default` project until the controller's table is used

    def use_claims(self, claims: ClaimIndex) -> None:
        """Read what the other apps declare from the controller's index (see agent.controller.claims)."""
        self._claims = claims

    def use_projects(self, lookup: ProjectLookup) -> None:
        """Read projects from the controller's table, by name at each reconcile."""
        self._gate = ProjectGate(lookup, server=self._gate.server, cluster_name=self._gate.cluster_name)

    def use_cluster(self, *, server: str, name: str) -> None:
        """The server URL and name of the cluster this reconciler deploys to (project destinations and
        sync windows match them)."""
        self._gate = ProjectGate(self._gate.lookup, server=server, cluster_name=name)

    async def close(self) -> None:
        """Stop the watches; close the repositories."""
        if self._watch is not None:
            await self._watch.close()
        self._source.close()

    def forget_revisions(self, repo: str) -> None:
        """Drop the shared ls-remote answer for `repo`, so the next reconcile asks the server."""
        self._source.invalidate(repo)

    def reconfigure(self, *, source: SourceOptions, repositories: Sequence[RepoSpec], health: HealthAssessor,
                    history_limit: int) -> None:
        """A configuration reload: git credentials, timeouts and limits, health rules, history length.
        Operations in flight finish with what they started with."""
        self._source.reconfigure(source, repositories)
        self._health = health
        self._history_limit = history_limit

    # ------------------------------------------------------------------ the entry point

    async def reconcile(self, app: AppSpec, state: AppState, request: OperationRequest | None = None, *,
                        trigger: SyncTrigger = SyncTrigger.AUTO) -> Outcome:
        """Advance the sync in progress, or compare the app with the cluster and, when the policy or
        the request says so, start a sync. `request` is a person's; `trigger` names an automatic one."""
        clock = _Clock()
        try:
            refused = self._gate.refusal(app)
            if refused is not None:  # a sync in progress ends here too: nothing more is applied
                return failed_outcome(app.name, replace(state, operation=None), refused, started=clock.started)
            if state.operation is not None:
                return await self._advance(app, state, state.operation, clock)
            return await self._compare(app, state, request, trigger, clock)
        except AgentError as exc:
            return failed_outcome(app.name, state, exc, started=clock.started, duration=clock.elapsed())

    # ------------------------------------------------------------------ compare

    async def _compare(self, app: AppSpec, state: AppState, request: OperationRequest | None,
                       trigger: SyncTrigger, clock: _Clock) -> Outcome:
        epoch = self._watch.epoch(app.name) if self._watch else 0
        touches = self._watch.touches(app.name) if self._watch else 0
        if request is not None and not request.dry_run:
            window = self._gate.window(app, now=clock.started, manual=True)
            if not window.allowed:  # refused before it starts, as Argo CD's API refuses it
                return self._held(app, state, window.reason, clock)
        wanted = request.revision if request and request.revision else app.revision
        sha = await self._source.resolve(app.repo, wanted)
        if request is None:
            unchanged = self._unchanged(app, state, sha, clock)
            if unchanged is not None:
                return unchanged
        revision = await self._source.fetch(app.repo, sha, ref=wanted)
        selective = bool(request and request.resources)
        prune = False if selective else request.prune if request else None
        try:
            seen = await self._observer.observe(app, state, revision, prune=prune, claims=self._claims,
                                                adopt_existing=self._gate.adopt_existing(app))
        except AgentError as exc:
            return failed_outcome(app.name, state, exc, started=clock.started, duration=clock.elapsed(),
                               revision=revision)
        plan, window = self._gate.judge(app, seen.plan, now=clock.started, manual=request is not None)
        seen = replace(seen, plan=plan)
        if request is None:  # only the tracked revision moves the pause and the tracked commit
            state = replace(state, tracked_sha=sha, pause=still_paused(state.pause, sha))
        decision = _decision(app, seen.plan, sha, state, request, now=clock.started)
        if request is None:  # a window holds what the policy would start; the comparison still shows
            decision = held_by_window(decision, blocked="" if window.allowed else window.reason,
                                      opens_at=window.opens_at)
        state = replace(state, kinds=seen.kinds, unchanged=None)
        if decision.sync:
            operation = SyncOperation(revision, request.trigger if request else trigger,
                                      app.sync_policy.prune if prune is None else prune, manual=request is not None,
                                      started=clock.started, plan=seen.plan, prints=seen.prints,
                                      resources=request.resources if request else (),
                                      initiated_by=request.initiated_by if request else "")
            started = await self._advance(app, state, operation, clock, decision=decision)
            return replace(started, result=replace(started.result, definitions=seen.definitions))
        return self._compared(app, state, seen, decision, clock, mark=(epoch, touches))

    @staticmethod
    def _held(app: AppSpec, state: AppState, reason: str, clock: _Clock) -> Outcome:
        """A manual sync a sync window refuses: nothing read, nothing changed; the caller is told why."""
        result = ReconcileResult(app.name, clock.started, clock.elapsed(), state.status, revision=state.status.revision,
                                 reused=True, blocked=reason)
        return Outcome(result, state)

    def _compared(self, app: AppSpec, state: AppState, seen: Observation, decision: SyncDecision,
                  clock: _Clock, *, mark: tuple[int, int]) -> Outcome:
        plan = seen.plan
        resources = statuses.resource_states(plan, seen.live, None, self._health.assess)
        status = statuses.compared(state.status, revision=seen.revision, plan=plan, resources=resources,
                                   conditions=statuses.conditions(plan, window=decision.window),
                                   reason=decision.reason,
                                   at=clock.started)
        diffs = statuses.diffs(plan, app.ignore_differences)
        unchanged = None
        if not plan.out_of_sync and self._watch is not None and self._watch.synced(seen.kinds):
            unchanged = UnchangedSince(app, seen.revision.sha, mark[0], mark[1], self._health,
                                       self._claims.epoch(app.name), self._gate.project(app))
        next_state = replace(state, status=status, diffs=diffs, unchanged=unchanged,
                             applied=applied_versions(plan, seen.prints, changes=None, responses={}),
                             inventory=inventory(app.name, plan, None))
        result = ReconcileResult(app.name, clock.started, clock.elapsed(), status, revision=seen.revision, plan=plan,
                                 decision=decision, diffs=diffs, definitions=seen.definitions)
        return Outcome(result, next_state)

    def _unchanged(self, app: AppSpec, state: AppState, sha: str, clock: _Clock) -> Outcome | None:
        """Nothing moved since the app was last found in sync: the same comparison, health read from
        the cache when an object changed at all (status included). No API call, no render: this is
        what a poll of an unchanged app costs."""
        mark, watch = state.unchanged, self._watch
        if mark is None or watch is None or mark.spec != app or mark.sha != sha \
                or mark.epoch != watch.epoch(app.name) or not watch.synced(state.kinds) \
                or mark.claims != self._claims.epoch(app.name) or mark.project != self._gate.project(app):
            return None
        status = state.status
        touches = watch.touches(app.name)
        if touches != mark.touches or mark.rules is not self._health:
            live = watch.objects(app.name, state.kinds)
            resources = statuses.reassessed(status.resources, live, self._health.assess)
            status = replace(status, resources=resources, health_status=aggregate(r.health_status for r in resources))
            mark = replace(mark, touches=touches, rules=self._health)
        status = replace(status, reconciled_at=clock.started)
        next_state = replace(state, status=status, unchanged=mark, tracked_sha=sha,
                             pause=still_paused(state.pause, sha))
        result = ReconcileResult(app.name, clock.started, clock.elapsed(), status, revision=status.revision,
                                 reused=True)
        return Outcome(result, next_state)

    # ------------------------------------------------------------------ sync, step by step

    async def _advance(self, app: AppSpec, state: AppState, operation: SyncOperation, clock: _Clock, *,
                       decision: SyncDecision | None = None) -> Outcome:
        if operation.plan is None:  # restored from the snapshot: plan again at its revision, from the start
            try:
                revision = await self._source.fetch(app.repo, operation.revision.sha, ref=operation.revision.ref)
                seen = await self._observer.observe(app, state, revision, prune=operation.prune,
                                                    claims=self._claims, adopt_existing=self._gate.adopt_existing(app))
            except AgentError as exc:  # the operation cannot go on: it ends here, nothing more applied
                return failed_outcome(app.name, replace(state, operation=None), exc, started=clock.started,
                                   duration=clock.elapsed(), revision=operation.revision)
            # From the first step again; hooks already run are known from the operation and not run twice.
            operation = replace(operation, plan=seen.plan, prints=seen.prints, step=0, waiting_since=None,
                                changes=())
        # The project as it is now: a rule tightened meanwhile stops the sync before its next step.
        assert operation.plan is not None
        judged, _ = self._gate.judge(app, operation.plan, now=clock.started, manual=operation.manual, windows=False)
        operation = replace(operation, plan=judged)
        runner = SyncRunner(self._kube, app.name, app.namespace, app.sync_policy, self._health.assess,
                            self._observer.read, revision=operation.revision.sha, author=operation.revision.author,
                            on_write=self._watch.note_write if self._watch else None,
                            adopt_existing=self._gate.adopt_existing(app))
        step = await runner.step(operation)
        if step.result is None:
            status = statuses.running(state.status, step.operation, at=clock.started,
                                      resources=self._health_meanwhile(state, step.operation))
            result = ReconcileResult(app.name, clock.started, clock.elapsed(), status,
                                     revision=operation.revision, plan=operation.plan, decision=decision,
                                     running=True)
            return Outcome(result, replace(state, status=status, operation=step.operation, diffs={}))
        return await self._finished(app, state, step, clock, decision)

    def _health_meanwhile(self, state: AppState, operation: SyncOperation) -> tuple[ResourceState, ...] | None:
        """Every desired object's health while a sync runs, from the watch cache (what the sync wrote when
        the cache has not seen it yet), so a long first sync does not show Unknown; None without a cache."""
        if self._watch is None or operation.plan is None or not self._watch.synced(state.kinds):
            return None
        seen = {obj.ref: obj.live for obj in operation.plan.objects if obj.live is not None}
        live = {**seen, **operation.written, **self._watch.objects(state.name, state.kinds)}
        return statuses.resource_states(operation.plan, live, None, self._health.assess)

    async def _finished(self, app: AppSpec, state: AppState, step: Step, clock: _Clock,
                        decision: SyncDecision | None) -> Outcome:
        """The operation ended: health of every desired object as the cluster shows it now (apply
        responses show an object before its controller acted), proofs, inventory, history."""
        operation, sync = step.operation, step.result
        assert operation.plan is not None and sync is not None
        plan, revision = operation.plan, operation.revision
        live = await self._observer.read_back(plan, sync.responses)
        resources = statuses.resource_states(plan, live, sync.changes, self._health.assess)
        failed = sync.message if sync.phase is not OperationPhase.SUCCEEDED else ""
        status = statuses.synced(state.status, revision=revision, phase=sync.phase, message=sync.message,
                                 changes=sync.changes, resources=resources,
                                 conditions=statuses.conditions(plan, sync_failed=failed), at=clock.started,
                                 blocked=plan.blocked)
        entry = history_entry(state.history, revision=revision, trigger=operation.trigger, phase=sync.phase,
                              started=sync.started, finished=sync.finished, changes=sync.changes,
                              initiated_by=operation.initiated_by, hooks=sync.hooks)
        next_state = replace(
            state, status=status, operation=None, diffs={}, unchanged=None,
            last_sync=statuses.next_last_sync(state.last_sync, revision=revision.sha, phase=sync.phase,
                                              finished=sync.finished, manual=operation.manual),
            history=append_history(state.history, entry, self._history_limit),
            applied=applied_versions(plan, operation.prints, changes=sync.changes, responses=sync.responses),
            inventory=inventory(app.name, plan, sync.changes),
        )
        result = ReconcileResult(app.name, clock.started, clock.elapsed(), status, revision=revision, plan=plan,
                                 decision=decision, sync=sync)
        return Outcome(result, next_state)

    # ------------------------------------------------------------------ for the controller

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

    async def delete_owned(self, app: AppSpec, kinds: Iterable[Kind], namespaces: Iterable[str]) -> Teardown:
        """Delete what an app removed with `prune_on_delete = true` owns (see teardown), objects another
        app declares apart; then run its PostDelete hooks (see post_delete)."""
        kinds = tuple(kinds)
        teardown = await delete_owned(self._kube, app, kinds, namespaces=namespaces, claims=self._claims,
                                      keep=self._gate.keeps(app))
        try:
            refused = self._gate.refusal(app)
            if refused is not None:
                raise refused
            revision = await self._source.fetch(app.repo, await self.resolve_tracked(app), ref=app.revision)
            hooks = [hook for hook in (await self._observer.desired(app, revision)).hooks
                     if hook.phase is HookType.POST_DELETE]
            refused = self._gate.refusal(app, [hook.template for hook in hooks])
            if refused is not None:
                raise refused
        except AgentError as exc:
            log.error("PostDelete hooks not run: the app cannot be rendered, or its project refuses it",
                      extra={"app": app.name, "error": str(exc)})
            return teardown
        if not hooks:
            return teardown
        versions = {kind: api_version for api_version, kind in kinds}
        gone = [(versions[ref.kind], ref) for ref in teardown.deleted if ref.kind in versions]
        runs = await run_post_delete(self._kube, app, hooks, revision, deleted=gone, health=self._health.assess)
        return replace(teardown, hooks=runs)


class _Clock:
    """When a reconcile started (wall clock, for status and history) and how long it took (monotonic)."""

    def __init__(self) -> None:
        self.started, self._monotonic = time.time(), time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self._monotonic


def _decision(app: AppSpec, plan: Plan, sha: str, state: AppState, request: OperationRequest | None, *,
              now: float) -> SyncDecision:
    if request is not None:
        return SyncDecision(not request.dry_run, "dry run" if request.dry_run else f"{request.trigger.value} sync")
    return decide(app.sync_policy, out_of_sync=plan.out_of_sync, revision=sha, last=state.last_sync, now=now,
                  paused=state.pause)
