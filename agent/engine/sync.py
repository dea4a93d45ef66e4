"""Run a plan through the Kubernetes API: pre-sync kinds, waves in order, health between waves, prune.

Decisions were made by `plan`; this module only carries them out and records what
happened in a ChangeSet. A failure in one wave stops every later wave and all
pruning; objects in the failing wave are still attempted (as Argo CD does).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from agent.engine.health import Health, wave_status
from agent.engine.plan import Action, Plan, PlannedObject, PruneCandidate
from agent.errors import KubeConflict, KubeError, KubeInvalid, KubeUnreachable
from agent.kube import Deleted, KubeClient, preconditions
from agent.model import (
    Change,
    ChangeAction,
    ChangeSet,
    HealthStatus,
    KubeObject,
    ObjectRef,
    OperationPhase,
    SyncPolicy,
)

log = logging.getLogger(__name__)

HealthCheck = Callable[[KubeObject | None], Health]
Reader = Callable[[PlannedObject, KubeObject | None], Awaitable[KubeObject | None]]
RECREATE_OPTIONS = frozenset({"Replace=true", "Force=true"})
CHANGED_SINCE_READ = ("not pruned: the object changed, or was created again, since it was read (precondition "
                      "failed); left alone, looked at again by the next reconcile")


@dataclass(frozen=True)
class SyncResult:
    phase: OperationPhase
    revision: str
    changes: ChangeSet
    message: str = ""
    started: float = 0.0
    finished: float = 0.0
    live: dict[ObjectRef, KubeObject] = field(default_factory=dict)
    responses: dict[ObjectRef, KubeObject] = field(default_factory=dict)  # what each apply returned


class SyncFailed(Exception):
    """A step failed; the message names the object and the API's reason."""


@dataclass
class SyncRunner:
    kube: KubeClient
    app: str
    namespace: str
    revision: str
    policy: SyncPolicy
    health: HealthCheck
    author: str = ""  # of the revision, for the audit events
    read: Reader | None = None  # current state of an object for health waits; default: a GET
    on_write: Callable[[KubeObject], None] | None = None  # told about every object the sync wrote
    poll_interval: float = 0.2
    changes: list[Change] = field(default_factory=list)
    live: dict[ObjectRef, KubeObject] = field(default_factory=dict)
    responses: dict[ObjectRef, KubeObject] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    async def run(self, plan: Plan, *, prune: bool) -> SyncResult:
        started = self.started = time.time()
        phase, message = OperationPhase.SUCCEEDED, ""
        try:
            if plan.refusal:
                raise SyncFailed(plan.refusal)
            if self.policy.has("CreateNamespace=true"):
                await self._ensure_namespace()
            waves = plan.waves()
            for index, (_, objects) in enumerate(waves):
                try:
                    await self._apply_wave(objects)
                except SyncFailed:
                    for later in waves[index + 1:]:
                        self._record_skipped(later[1], "not applied: an earlier wave failed")
                    raise
            if prune:
                await self._prune(plan.prune_order())
            self._record_blocked(plan.prune, prune=prune)
        except SyncFailed as exc:
            phase, message = OperationPhase.FAILED, str(exc)
        except KubeUnreachable as exc:
            phase, message = OperationPhase.ERROR, str(exc)
        return SyncResult(phase, self.revision, ChangeSet(tuple(self.changes)), message, started, time.time(),
                          dict(self.live), dict(self.responses))

    # ------------------------------------------------------------------ apply

    async def _apply_wave(self, objects: Sequence[PlannedObject]) -> None:
        failures: list[str] = []
        applied: list[PlannedObject] = []
        for obj in objects:
            if obj.action is Action.UNCHANGED:
                assert obj.live is not None
                self.live[obj.ref] = obj.live
                self.changes.append(Change(obj.ref, ChangeAction.UNCHANGED))
                continue
            try:
                self.live[obj.ref] = self.responses[obj.ref] = response = await self._apply(obj)
            except KubeUnreachable:
                raise
            except KubeError as exc:
                self.changes.append(Change(obj.ref, ChangeAction.FAILED, str(exc)))
                self._audit("apply failed", obj.ref, "failed", level=logging.WARNING, error=exc.message)
                failures.append(str(exc))
                continue
            if self.on_write is not None:
                self.on_write(response)
            created = obj.action is Action.CREATE and not _existed_before(response, self.started)
            action = ChangeAction.CREATED if created else ChangeAction.CONFIGURED
            self.changes.append(Change(obj.ref, action))
            self._audit("applied", obj.ref, action.value)
            applied.append(obj)
        if failures:
            raise SyncFailed(failures[0] if len(failures) == 1 else f"{len(failures)} objects failed: {failures[0]}")
        if applied:
            await self._wait_healthy(objects)
            if any(obj.ref.kind == "CustomResourceDefinition" for obj in applied):
                self.kube.forget_discovery()

    async def _apply(self, obj: PlannedObject) -> KubeObject:
        try:
            return await self.kube.apply(obj.desired)
        except KubeInvalid as exc:
            recreate = (obj.options | self.policy.options) & RECREATE_OPTIONS
            if not recreate or obj.live is None or "immutable" not in exc.message:
                raise
        # An immutable field changed and the object allows it: delete, wait until gone, create.
        # Only the object that was read (its uid; its content is being replaced anyway).
        self._audit("replacing", obj.ref, "replaced")
        deleted = await self.kube.delete(obj.desired, propagation="Background",
                                         only_if=preconditions(obj.live, version=False))
        if deleted is Deleted.CHANGED:
            raise KubeConflict("not replaced: the object was deleted and created again since it was read "
                               "(uid precondition failed)", ref=obj.ref)
        await self._wait_gone(obj)
        return await self.kube.apply(obj.desired)

    async def _wait_gone(self, obj: PlannedObject) -> None:
        deadline = time.monotonic() + min(self.policy.health_timeout, 60.0)
        while await self.kube.get(obj.desired) is not None:
            if time.monotonic() > deadline:
                raise SyncFailed(f"{obj.ref}: still present after deleting it for replacement")
            await asyncio.sleep(self.poll_interval)

    async def _wait_healthy(self, objects: Sequence[PlannedObject]) -> None:
        """Wait until every object of the wave is Healthy (or Suspended); Degraded fails at once."""
        deadline = time.monotonic() + self.policy.health_timeout
        pending = list(objects)
        while True:
            healths: dict[ObjectRef, Health] = {}
            for obj in pending:
                current = await self._read(obj)
                if current is not None:
                    self.live[obj.ref] = current
                is_crd = obj.ref.kind == "CustomResourceDefinition"
                healths[obj.ref] = _established(current) if is_crd else self.health(current)
            wave = wave_status(healths)
            if wave.failed:
                raise SyncFailed(wave.describe())
            if wave.done:
                return
            if time.monotonic() > deadline:
                raise SyncFailed(f"timed out after {self.policy.health_timeout:.0f}s waiting for health: "
                                 f"{wave.describe()}")
            waiting = {ref for ref, _ in wave.unhealthy}
            pending = [obj for obj in pending if obj.ref in waiting]
            await asyncio.sleep(self.poll_interval)

    async def _read(self, obj: PlannedObject) -> KubeObject | None:
        if self.read is not None:
            return await self.read(obj, self.live.get(obj.ref))
        return await self.kube.get(obj.desired)

    async def _ensure_namespace(self) -> None:
        # Created without our label: a namespace the app did not declare is never pruned.
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": self.namespace}}
        if await self.kube.get(namespace) is None:
            await self.kube.apply(namespace)
            self._audit("created namespace", ObjectRef.of(namespace), "created")

    # ------------------------------------------------------------------ prune

    async def _prune(self, candidates: Sequence[PruneCandidate]) -> None:
        """Delete each candidate only as it was read (uid and resourceVersion): waves before it, or a
        stale cache, may have let someone delete and re-create it, or change it, meanwhile."""
        for candidate in candidates:
            try:
                deleted = await self.kube.delete(candidate.live, only_if=preconditions(candidate.live))
            except KubeUnreachable:
                raise
            except KubeError as exc:
                self.changes.append(Change(candidate.ref, ChangeAction.FAILED, f"prune failed: {exc.message}"))
                self._audit("prune failed", candidate.ref, "failed", level=logging.WARNING, error=exc.message)
                raise SyncFailed(f"{candidate.ref}: prune failed: {exc.message}") from exc
            if deleted is Deleted.CHANGED:
                self.changes.append(Change(candidate.ref, ChangeAction.SKIPPED, CHANGED_SINCE_READ))
                self._audit("not pruned", candidate.ref, "skipped", level=logging.WARNING, error=CHANGED_SINCE_READ)
                continue
            self.changes.append(Change(candidate.ref, ChangeAction.PRUNED,
                                       "already gone" if deleted is Deleted.GONE else ""))
            self._audit("pruned", candidate.ref, "pruned")

    def _record_blocked(self, candidates: Sequence[PruneCandidate], *, prune: bool) -> None:
        for candidate in candidates:
            if candidate.blocked:
                verb = "not pruned" if candidate.extraneous_ignored else "requires pruning"
                self.changes.append(Change(candidate.ref, ChangeAction.SKIPPED, f"{verb}: {candidate.blocked}"))
            elif not prune:
                self.changes.append(Change(candidate.ref, ChangeAction.SKIPPED, "requires pruning: pruning is off"))

    def _record_skipped(self, objects: Sequence[PlannedObject], reason: str) -> None:
        self.changes.extend(Change(obj.ref, ChangeAction.SKIPPED, reason) for obj in objects)

    def _audit(self, message: str, ref: ObjectRef, action: str, *, level: int = logging.INFO,
               error: str = "") -> None:
        extra = {"app": self.app, "revision": self.revision, "author": self.author, "object": str(ref),
                 "action": action}
        if error:
            extra["error"] = error
        log.log(level, message, extra=extra)


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
