"""Carry out a plan through the Kubernetes API, one step at a time: pre-sync kinds, waves in order,
health between waves, prune.

Decisions were made by `plan`; this module only carries them out and records what happened.
A sync is a `SyncOperation` advanced by `SyncRunner.step`, as gitops-engine's SyncContext is:
each step applies waves until one needs to become healthy, and returns. The caller keeps
the operation and steps it again when something changed (the watch cache wakes the app) or
a moment later; nothing waits in here, so a slow rollout holds no lock and no slot.

A failure in one wave stops every later wave and all pruning; objects in the failing wave
are still attempted (as Argo CD does).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from agent.engine.health import Health, wave_status
from agent.errors import KubeConflict, KubeError, KubeInvalid, KubeUnreachable
from agent.kube import Deleted, KubeClient, preconditions
from agent.model import (
    Action,
    Change,
    ChangeAction,
    ChangeReason,
    ChangeSet,
    HealthStatus,
    KubeObject,
    ObjectRef,
    OperationPhase,
    PlannedObject,
    PruneCandidate,
    SyncOperation,
    SyncPolicy,
)

log = logging.getLogger(__name__)

HealthCheck = Callable[[KubeObject | None], Health]
Reader = Callable[[PlannedObject, KubeObject | None], Awaitable[KubeObject | None]]
RECREATE_OPTIONS = frozenset({"Replace=true", "Force=true"})
WAITING_LISTED = 1  # objects named in "waiting for healthy state of …" before "and N more"
CHANGED_SINCE_READ = ("not pruned: the object changed, or was created again, since it was read (precondition "
                      "failed); left alone, looked at again by the next reconcile")


@dataclass(frozen=True)
class SyncResult:
    """A finished sync operation."""

    phase: OperationPhase
    revision: str
    changes: ChangeSet
    message: str = ""
    started: float = 0.0
    finished: float = 0.0
    responses: Mapping[ObjectRef, KubeObject] = field(default_factory=dict)  # what each apply returned


@dataclass(frozen=True)
class Step:
    """What one step did: the operation advanced, and its result once it ended."""

    operation: SyncOperation
    result: SyncResult | None = None


class SyncFailed(Exception):
    """A step failed; the message names the object and the API's reason."""


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

    async def step(self, operation: SyncOperation) -> Step:
        """Advance the operation: check the health of the wave it waits for; apply waves until one
        has to become healthy; after the last, prune."""
        plan = operation.plan
        assert plan is not None, "an operation is stepped with its plan"
        progress = _Progress(operation)
        waves = plan.waves()
        try:
            if plan.refusal:
                raise SyncFailed(plan.refusal)
            if progress.op.wave == 0 and progress.op.waiting_since is None and \
                    self.policy.has("CreateNamespace=true"):
                await self._ensure_namespace(progress)
            if progress.op.waiting_since is not None and not await self._wave_healthy(progress, waves):
                return progress.step()
            while progress.op.wave < len(waves):
                objects = waves[progress.op.wave][1]
                progress.op = replace(progress.op, wave=progress.op.wave + 1)
                if await self._apply_wave(progress, objects):
                    progress.op = replace(progress.op, waiting_since=self.clock())
                    if not await self._wave_healthy(progress, waves):
                        return progress.step()
            if operation.prune:
                await self._prune(progress, plan.prune_order())
            self._record_blocked(progress, plan.prune, prune=operation.prune)
        except (SyncFailed, KubeError) as exc:
            if progress.op.wave > 0:  # a wave failed (applying, or becoming healthy): none after it is applied
                for _, skipped in waves[progress.op.wave:]:
                    for obj in skipped:
                        progress.add(Change(obj.ref, ChangeAction.SKIPPED, "not applied: an earlier wave failed",
                                            ChangeReason.EARLIER_WAVE_FAILED))
            return progress.finish(OperationPhase.FAILED, str(exc), self.clock())
        except KubeUnreachable as exc:
            return progress.finish(OperationPhase.ERROR, str(exc), self.clock())
        return progress.finish(OperationPhase.SUCCEEDED, "", self.clock())

    # ------------------------------------------------------------------ health between waves

    async def _wave_healthy(self, progress: _Progress, waves: Sequence[tuple[int, list[PlannedObject]]]) -> bool:
        """Whether the wave just applied (the one before `op.wave`) is healthy; SyncFailed when it is
        Degraded or the wait timed out. A CRD counts when it is established."""
        objects = waves[progress.op.wave - 1][1]
        healths: dict[ObjectRef, Health] = {}
        for obj in objects:
            current = await self.read(obj, progress.written.get(obj.ref))
            is_crd = obj.ref.kind == "CustomResourceDefinition"
            healths[obj.ref] = _established(current) if is_crd else self.health(current)
        wave = wave_status(healths)
        if wave.failed:
            raise SyncFailed(wave.describe())
        waiting_since = progress.op.waiting_since or self.clock()
        if not wave.done:
            if self.clock() - waiting_since > self.policy.health_timeout:
                raise SyncFailed(f"timed out after {self.policy.health_timeout:.0f}s waiting for health: "
                                 f"{wave.describe()}")
            progress.op = replace(progress.op, message=_waiting_message([ref for ref, _ in wave.unhealthy]))
            return False
        crds = [obj for obj in objects if obj.ref.kind == "CustomResourceDefinition"]
        if crds:
            self.kube.forget_discovery()
            # Established comes a moment before discovery serves the new kind; custom resources
            # of the next wave could not be applied until it does.
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

    # ------------------------------------------------------------------ apply

    async def _apply_wave(self, progress: _Progress, objects: Sequence[PlannedObject]) -> bool:
        """Apply one wave; True when something was written (its health is then waited for)."""
        failures: list[str] = []
        applied = False
        for obj in objects:
            if obj.action is Action.UNCHANGED:
                progress.add(Change(obj.ref, ChangeAction.UNCHANGED))
                continue
            try:
                response = await self._apply(obj)
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

    async def _apply(self, obj: PlannedObject) -> KubeObject:
        try:
            return await self.kube.apply(obj.desired)
        except KubeInvalid as exc:
            recreate = (obj.options | self.policy.options) & RECREATE_OPTIONS
            if not recreate or obj.live is None or "immutable" not in exc.message:
                raise
        # An immutable field changed and the object allows it: delete, then create. Only the object
        # that was read is deleted (its uid; its content is being replaced anyway), in the background;
        # the create waits until it is gone.
        self._audit("replacing", obj.ref, "replaced")
        deleted = await self.kube.delete(obj.live, propagation="Background",
                                         only_if=preconditions(obj.live, version=False))
        if deleted is Deleted.CHANGED:
            raise KubeConflict("not replaced: the object was deleted and created again since it was read "
                               "(uid precondition failed)", ref=obj.ref)
        return await self._create_when_gone(obj)

    async def _create_when_gone(self, obj: PlannedObject) -> KubeObject:
        deadline = time.monotonic() + min(self.policy.health_timeout, 60.0)
        while await self.kube.get(obj.desired) is not None:
            if time.monotonic() > deadline:
                raise SyncFailed(f"{obj.ref}: still present after deleting it for replacement")
            await asyncio.sleep(0.2)
        return await self.kube.apply(obj.desired)

    async def _ensure_namespace(self, progress: _Progress) -> None:
        # Created without our label: a namespace the app did not declare is never pruned.
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        if await self.kube.get(namespace) is None:
            await self.kube.apply(namespace)
            self._audit("created namespace", ObjectRef.of(namespace), "created")

    # ------------------------------------------------------------------ prune

    async def _prune(self, progress: _Progress, candidates: Sequence[PruneCandidate]) -> None:
        """Delete each candidate only as it was read (uid and resourceVersion): waves before it, or a
        stale cache, may have let someone delete and re-create it, or change it, meanwhile."""
        for candidate in candidates:
            try:
                deleted = await self.kube.delete(candidate.live, only_if=preconditions(candidate.live))
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

    def _record_blocked(self, progress: _Progress, candidates: Sequence[PruneCandidate], *, prune: bool) -> None:
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


class _Progress:
    """The operation as one step advances it, with the changes and writes made so far."""

    def __init__(self, operation: SyncOperation) -> None:
        self.op = operation
        self.started = operation.started
        self.changes = list(operation.changes)
        self.written = dict(operation.written)

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def wrote(self, ref: ObjectRef, response: KubeObject) -> None:
        self.written[ref] = response

    def step(self) -> Step:
        return Step(replace(self.op, changes=tuple(self.changes), written=self.written))

    def finish(self, phase: OperationPhase, message: str, now: float) -> Step:
        operation = replace(self.op, changes=tuple(self.changes), written=self.written, waiting_since=None,
                            message=message)
        result = SyncResult(phase, operation.revision.sha, ChangeSet(tuple(self.changes)), message,
                            self.started, now, self.written)
        return Step(operation, result)


def _waiting_message(refs: Sequence[ObjectRef]) -> str:
    """Argo CD's words: `waiting for healthy state of apps/Deployment/api and 3 more resources`."""
    shown = ", ".join(f"{ref.group}/{ref.kind}/{ref.name}" if ref.group else f"{ref.kind}/{ref.name}"
                      for ref in refs[:WAITING_LISTED])
    more = len(refs) - WAITING_LISTED
    return f"waiting for healthy state of {shown}" + (f" and {more} more resources" if more > 0 else "")


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
