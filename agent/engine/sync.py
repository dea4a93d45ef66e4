"""Carry out a plan through the Kubernetes API, one step at a time: PreSync hooks, Namespaces and CRDs,
the Sync phase wave by wave (objects and Sync hooks), prune, PostSync hooks; SyncFail hooks
when it failed. The steps and when a step waits are agent.engine.steps'.

Decisions were made by `plan`; this module only carries them out and records what happened.
A sync is a `SyncOperation` advanced by `SyncRunner.step`, as gitops-engine's SyncContext is:
each step runs until it has to wait (for hooks to complete, for health, for an earlier hook
object to go away) and returns. The caller keeps the operation and steps it again when
something changed (the watch cache wakes the app) or a moment later; nothing waits in here,
so a slow rollout or a long migration holds no lock and no slot.

A failure stops every later step and all pruning; objects of the failing step are still
attempted (as Argo CD does), then the SyncFail hooks run.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from agent.engine.desired import tracking_owner
from agent.engine.health import Health, wave_status
from agent.engine.progress import Progress, Step, SyncFailed, SyncResult
from agent.engine.steps import SyncStep, multi_step, selected, sync_fail_hooks, sync_steps
from agent.engine.sync_apply import ObjectWriter
from agent.engine.sync_hooks import HookRunner
from agent.errors import KubeError, KubeUnreachable
from agent.kube import Deleted, KubeClient, preconditions
from agent.model import (
    Action,
    Change,
    ChangeAction,
    ChangeReason,
    HealthStatus,
    KubeObject,
    ObjectRef,
    OperationPhase,
    Plan,
    PlannedObject,
    PruneCandidate,
    SyncOperation,
    SyncPolicy,
)

__all__ = ["Step", "SyncFailed", "SyncResult", "SyncRunner"]

log = logging.getLogger(__name__)
CHANGED_SINCE_READ = ("not pruned: the object changed, or was created again, since it was read (precondition "
                      "failed); left alone, looked at again by the next reconcile")

HealthCheck = Callable[[KubeObject | None], Health]
Reader = Callable[[PlannedObject, KubeObject | None], Awaitable[KubeObject | None]]
WAITING_LISTED = 1  # objects named in "waiting for healthy state of …" before "and N more"


@dataclass
class SyncRunner:
    kube: KubeClient
    app: str
    namespace: str
    policy: SyncPolicy
    health: HealthCheck
    read: Reader  # the current state of an object, given what the sync wrote to it (None: nothing)
    revision: str = ""  # the commit being synced, and its author, for the audit events
    author: str = ""
    on_write: Callable[[KubeObject], None] | None = None  # told about every object the sync wrote
    clock: Callable[[], float] = time.time
    adopt_existing: bool = True  # whether an existing object no app manages may be taken over

    async def step(self, operation: SyncOperation) -> Step:
        """Advance the operation: check the step it waits for; run steps until one has to wait; when
        the last has run, delete the hooks the operation's success says to."""
        plan = operation.plan
        assert plan is not None, "an operation is stepped with its plan"
        progress = Progress(operation)
        hooks = HookRunner(self.kube, self.app, operation.revision.sha, operation.started, self.health)
        steps = sync_steps(plan, selection=operation.resources)
        refusal = "" if operation.failure else self._refusal(plan, operation)
        if refusal:  # refused before anything ran: no step, no SyncFail hook (as Argo CD's FailOnSharedResource)
            return progress.finish(OperationPhase.FAILED, refusal, self.clock())
        try:
            if operation.failure:
                return await self._failing(progress, plan, hooks)
            if progress.op.step == 0 and progress.op.waiting_since is None and \
                    self.policy.has("CreateNamespace=true"):
                await self._ensure_namespace()
            waits = multi_step(plan, prune=operation.prune, selection=operation.resources)
            if progress.op.waiting_since is not None and \
                    not await self._settled(progress, steps[progress.op.step - 1], waits, hooks):
                return progress.step()
            while progress.op.step < len(steps):
                current = steps[progress.op.step]
                if current.prune:
                    if operation.prune:
                        await self._prune(progress, plan.prune_order())
                    self._record_blocked(progress, plan.prune, prune=operation.prune)
                    progress.op = replace(progress.op, step=progress.op.step + 1)
                    continue
                going = await hooks.clear(progress, current.hooks)
                if going:
                    progress.op = replace(progress.op, message=waiting_message("deletion of", going, "resources"))
                    return progress.step()
                progress.op = replace(progress.op, step=progress.op.step + 1)
                wrote = await self._apply_step(progress, current.objects)
                await hooks.create(progress, current.hooks)
                if current.hooks or (wrote and (waits or current.pre_sync)):
                    progress.op = replace(progress.op, waiting_since=self.clock())
                    if not await self._settled(progress, current, waits, hooks):
                        return progress.step()
            await hooks.delete_after(progress, plan.hooks, succeeded=True)
        except (SyncFailed, KubeError) as exc:
            self._skip_rest(progress, steps)
            return await self._fail(progress, plan, hooks, str(exc))
        except KubeUnreachable as exc:
            return progress.finish(OperationPhase.ERROR, str(exc), self.clock())
        return progress.finish(OperationPhase.SUCCEEDED, "", self.clock())

    def _refusal(self, plan: Plan, operation: SyncOperation) -> str:
        """Why the sync must not start at all ('' when it may)."""
        if plan.refusal:
            return plan.refusal
        for wanted in operation.resources:
            if not any(selected(obj.ref, [wanted]) for obj in plan.objects):
                return f"{wanted}: not a resource of application {self.app} at {operation.revision.sha[:7]}"
        return ""

    # ------------------------------------------------------------------ waiting

    async def _settled(self, progress: Progress, step: SyncStep, waits: bool, hooks: HookRunner) -> bool:
        """Whether the step just run may be left: its hooks completed and, when the sync waits for health
        (multi-step, or Namespaces and CRDs), its objects healthy. SyncFailed when a hook failed, an
        object is Degraded, or the objects' health timed out (hooks have no timeout: a Job bounds
        itself with activeDeadlineSeconds)."""
        running, failed = await hooks.follow(progress, step.hooks)
        if failed:
            raise SyncFailed(failed[0] if len(failed) == 1 else f"{len(failed)} hooks failed: {failed[0]}")
        unhealthy: list[ObjectRef] = []
        if step.objects and (waits or step.pre_sync):
            unhealthy = await self._unhealthy(progress, step.objects)
        if running or unhealthy:
            message = waiting_message("completion of hook", [run.ref for run in running], "hooks") if running \
                else waiting_message("healthy state of", unhealthy, "resources")
            progress.op = replace(progress.op, message=message)
            return False
        crds = [obj for obj in step.objects if obj.ref.kind == "CustomResourceDefinition"]
        if crds:
            self.kube.forget_discovery()
            # Established comes a moment before discovery serves the new kind; custom resources
            # of the next step could not be applied until it does.
            unserved = [obj.ref for obj in crds if not await self._served(obj.desired)]
            if unserved:
                progress.op = replace(progress.op, message=f"waiting for the API server to serve {unserved[0]}")
                return False
        progress.op = replace(progress.op, waiting_since=None, message="")
        return True

    async def _served(self, crd: KubeObject) -> bool:
        spec = crd.get("spec") or {}
        kind = (spec.get("names") or {}).get("kind", "")
        versions = [v.get("name", "") for v in spec.get("versions") or [] if v.get("served", True)]
        for version in versions:
            if await self.kube.resource(f"{spec.get('group', '')}/{version}", kind) is None:
                return False
        return True

    async def _unhealthy(self, progress: Progress, objects: Sequence[PlannedObject]) -> list[ObjectRef]:
        """The step's objects not yet Healthy (or Suspended); SyncFailed when one is Degraded or the wait
        timed out. A CRD counts when it is established."""
        healths: dict[ObjectRef, Health] = {}
        for obj in objects:
            if obj.blocked:
                continue
            current = await self.read(obj, progress.written.get(obj.ref))
            is_crd = obj.ref.kind == "CustomResourceDefinition"
            healths[obj.ref] = _established(current) if is_crd else self.health(current)
        wave = wave_status(healths)
        if wave.failed:
            raise SyncFailed(wave.describe())
        waiting_since = progress.op.waiting_since or self.clock()
        if not wave.done and self.clock() - waiting_since > self.policy.health_timeout:
            raise SyncFailed(f"timed out after {self.policy.health_timeout:.0f}s waiting for health: "
                             f"{wave.describe()}")
        return [ref for ref, _ in wave.unhealthy]

    # ------------------------------------------------------------------ failure

    def _skip_rest(self, progress: Progress, steps: Sequence[SyncStep]) -> None:
        if progress.op.step == 0:
            return  # refused before anything ran
        for later in steps[progress.op.step:]:
            for obj in later.objects:
                progress.add(Change(obj.ref, ChangeAction.SKIPPED, "not applied: an earlier step failed",
                                    ChangeReason.EARLIER_WAVE_FAILED))

    async def _fail(self, progress: Progress, plan: Plan, hooks: HookRunner, message: str) -> Step:
        """The sync failed: run its SyncFail hooks (not for a selective sync), else end it."""
        if sync_fail_hooks(plan) and not progress.op.resources:
            progress.op = replace(progress.op, failure=message, waiting_since=None)
            return await self._failing(progress, plan, hooks)
        await hooks.delete_after(progress, plan.hooks, succeeded=False)
        return progress.finish(OperationPhase.FAILED, message, self.clock())

    async def _failing(self, progress: Progress, plan: Plan, hooks: HookRunner) -> Step:
        """Run the SyncFail hooks until they have completed; then the sync ends Failed, with why (and why a
        SyncFail hook failed, if one did)."""
        fail_hooks = sync_fail_hooks(plan)
        failure = progress.op.failure
        try:
            going = await hooks.clear(progress, fail_hooks)
            if going:
                progress.op = replace(progress.op, message=f"{failure}; "
                                      + waiting_message("deletion of", going, "resources"))
                return progress.step()
            await hooks.create(progress, fail_hooks)
            running, failed = await hooks.follow(progress, fail_hooks)
        except (SyncFailed, KubeError) as exc:
            running, failed = [], [str(exc)]
        except KubeUnreachable as exc:
            return progress.finish(OperationPhase.ERROR, f"{failure}; {exc}", self.clock())
        if running:
            progress.op = replace(progress.op, message=f"{failure}; " + waiting_message(
                "completion of hook", [run.ref for run in running], "hooks"))
            return progress.step()
        message = "; ".join([failure, *failed])
        try:
            await hooks.delete_after(progress, plan.hooks, succeeded=False)
        except KubeUnreachable as exc:
            message = f"{message}; hooks not deleted: {exc}"
        return progress.finish(OperationPhase.FAILED, message, self.clock())

    # ------------------------------------------------------------------ apply

    async def _apply_step(self, progress: Progress, objects: Sequence[PlannedObject]) -> bool:
        """Apply one step's objects; True when something was written (its health may then be waited for)."""
        failures: list[str] = []
        applied = False
        writer = ObjectWriter(self.kube, self.policy, lambda message, ref, action: self._audit(message, ref, action))
        for obj in objects:
            if obj.blocked and obj.action is not Action.UNCHANGED:
                progress.add(Change(obj.ref, ChangeAction.SKIPPED, obj.blocked, ChangeReason.NOT_APPLIED))
                continue
            if obj.action is Action.UNCHANGED:
                progress.add(Change(obj.ref, ChangeAction.UNCHANGED))
                continue
            taken = await self._taken_meanwhile(obj) if _taking(obj, self.app) else ""
            if taken:
                progress.add(Change(obj.ref, ChangeAction.SKIPPED, taken, ChangeReason.NOT_APPLIED))
                continue
            try:
                response = await writer.write(obj)
            except KubeError as exc:
                progress.add(Change(obj.ref, ChangeAction.FAILED, str(exc)))
                self._audit("apply failed", obj.ref, "failed", level=logging.WARNING, error=exc.message)
                failures.append(str(exc))
                continue
            progress.wrote(obj.ref, response)
            if self.on_write is not None:
                self.on_write(response)
            created = obj.action is Action.CREATE and not _existed_before(response, progress.started)
            action = ChangeAction.CREATED if created else ChangeAction.CONFIGURED
            progress.add(Change(obj.ref, action))
            self._audit("applied", obj.ref, action.value)
            applied = True
        if failures:
            raise SyncFailed(failures[0] if len(failures) == 1 else f"{len(failures)} objects failed: {failures[0]}")
        return applied

    async def _taken_meanwhile(self, obj: PlannedObject) -> str:
        """Why an object planned as new, or to be adopted, must not be applied after all: another app
        created or adopted it since the plan was made (its tracking id is not ours), or it exists
        unmanaged and may not be adopted. A forced apply would relabel it otherwise."""
        current = await self.read(obj, None)
        if current is None:
            return ""
        owner = tracking_owner(current)
        planned = tracking_owner(obj.live) if obj.live is not None else ""
        if owner and owner not in (self.app, planned):  # the planned owner: an object handed over to this app
            return f"{obj.ref} is owned by application {owner!r} since this sync was planned: not applied"
        if not owner and not self.adopt_existing:
            return f"{obj.ref} exists and no application manages it; the project does not allow adopting it"
        return ""

    async def _ensure_namespace(self) -> None:
        # Created without our label: a namespace the app did not declare is never pruned.
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        if await self.kube.get(namespace) is None:
            await self.kube.apply(namespace)
            self._audit("created namespace", ObjectRef.of(namespace), "created")

    # ------------------------------------------------------------------ prune

    async def _prune(self, progress: Progress, candidates: Sequence[PruneCandidate]) -> None:
        """Delete each candidate only as it was read (uid and resourceVersion): waves before it, or a
        stale cache, may have let someone delete and re-create it, or change it, meanwhile."""
        for candidate in candidates:
            try:
                deleted = await self.kube.delete(candidate.live, propagation=self.policy.prune_propagation,
                                                 only_if=preconditions(candidate.live))
            except KubeError as exc:
                progress.add(Change(candidate.ref, ChangeAction.FAILED, f"prune failed: {exc.message}"))
                self._audit("prune failed", candidate.ref, "failed", level=logging.WARNING, error=exc.message)
                raise SyncFailed(f"{candidate.ref}: prune failed: {exc.message}") from exc
            if deleted is Deleted.CHANGED:
                progress.add(Change(candidate.ref, ChangeAction.SKIPPED, CHANGED_SINCE_READ,
                                    ChangeReason.CHANGED_MEANWHILE))
                self._audit("not pruned", candidate.ref, "skipped", level=logging.WARNING, error=CHANGED_SINCE_READ)
                continue
            if deleted is Deleted.GONE:
                progress.add(Change(candidate.ref, ChangeAction.PRUNED, "already gone", ChangeReason.ALREADY_GONE))
            else:
                progress.add(Change(candidate.ref, ChangeAction.PRUNED))
            self._audit("pruned", candidate.ref, "pruned")

    def _record_blocked(self, progress: Progress, candidates: Sequence[PruneCandidate], *, prune: bool) -> None:
        for candidate in candidates:
            if candidate.blocked:
                if candidate.extraneous_ignored:
                    progress.add(Change(candidate.ref, ChangeAction.SKIPPED, f"not pruned: {candidate.blocked}",
                                        ChangeReason.IGNORED))
                else:
                    progress.add(Change(candidate.ref, ChangeAction.SKIPPED,
                                        f"requires pruning: {candidate.blocked}", ChangeReason.REQUIRES_PRUNING))
            elif not prune:
                progress.add(Change(candidate.ref, ChangeAction.SKIPPED, "requires pruning: pruning is off",
                                    ChangeReason.REQUIRES_PRUNING))

    def _audit(self, message: str, ref: ObjectRef, action: str, *, level: int = logging.INFO,
               error: str = "") -> None:
        extra = {"app": self.app, "revision": self.revision, "author": self.author, "object": str(ref),
                 "action": action}
        if error:
            extra["error"] = error
        log.log(level, message, extra=extra)


def _taking(obj: PlannedObject, app: str) -> bool:
    """Whether applying `obj` would make it this app's: it was not there, or not ours, when planned. Those
    are read again right before the write (the app's own objects need not be: nobody takes them over
    while it declares them)."""
    return obj.action is Action.CREATE or (obj.live is not None and tracking_owner(obj.live) != app)


def waiting_message(what: str, refs: Sequence[ObjectRef], things: str) -> str:
    """Argo CD's words: `waiting for healthy state of apps/Deployment/api and 3 more resources`,
    `waiting for completion of hook batch/Job/migrate`."""
    shown = ", ".join(f"{ref.group}/{ref.kind}/{ref.name}" if ref.group else f"{ref.kind}/{ref.name}"
                      for ref in refs[:WAITING_LISTED])
    more = len(refs) - WAITING_LISTED
    return f"waiting for {what} {shown}" + (f" and {more} more {things}" if more > 0 else "")


def _existed_before(response: KubeObject, started: float) -> bool:
    """Whether an object we meant to create was already there (adopted, not yet labelled as ours).

    The apply is an upsert either way; this only keeps the ChangeSet honest.
    """
    stamp = str((response.get("metadata") or {}).get("creationTimestamp") or "")
    try:
        created = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return False
    return created < started - 2.0  # the server stamps whole seconds


def _established(crd: KubeObject | None) -> Health:
    if crd is None:
        return Health(HealthStatus.MISSING, "CustomResourceDefinition does not exist yet")
    for condition in (crd.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Established" and condition.get("status") == "True":
            return Health(HealthStatus.HEALTHY)
    return Health(HealthStatus.PROGRESSING, "waiting for the CustomResourceDefinition to be established")

