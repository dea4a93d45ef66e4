"""Run a sync's hooks through the Kubernetes API: clear what an earlier sync left (BeforeHookCreation),
create, follow to completion, delete per policy. The decisions are agent.engine.hooks'.

Hook objects are read with GETs (they carry no app label, so the watch cache does not hold
them; a sync step polls them about once a second). Only objects this app's syncs created
(label `gitops-agent.io/hook-of: <app>`) are ever deleted; an object in a hook's way that is
not one fails the sync instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent import HOOK_LABEL
from agent.engine.health import Health
from agent.engine.hooks import hook_name, hook_object, hook_result, is_hook_of, made_from
from agent.engine.progress import Progress, SyncFailed
from agent.errors import KubeError
from agent.kube import Deleted, KubeClient, preconditions
from agent.model import DeletePolicy, Hook, HookRun, HookType, KubeObject, ObjectRef, OperationPhase

log = logging.getLogger("agent.engine.sync")  # audit events share the sync's logger

HealthCheck = Callable[[KubeObject | None], Health]


def describe(run: HookRun) -> str:
    return f"{run.phase.value} hook {run.ref}"


@dataclass
class HookRunner:
    kube: KubeClient
    app: str
    revision: str  # the commit being synced: part of generated names
    started: float  # when the operation started: part of generated names
    health: HealthCheck

    # ------------------------------------------------------------------ before creation

    async def clear(self, progress: Progress, hooks: Sequence[Hook]) -> list[ObjectRef]:
        """BeforeHookCreation: delete the objects earlier syncs made for hooks about to run. Returns the
        ones whose name the new object needs and that are still going away (wait for them)."""
        going: list[ObjectRef] = []
        for hook in hooks:
            if progress.run_of(hook) is not None:
                continue
            if not hook.generated:
                going += await self._clear_named(hook)
            elif DeletePolicy.BEFORE_HOOK_CREATION in hook.delete_policies:
                await self._clear_generated(hook)
        return going

    async def _clear_named(self, hook: Hook) -> list[ObjectRef]:
        live = await self.kube.get(_identity(hook.api_version, hook.ref))
        if live is None:
            return []
        if not is_hook_of(self.app, live):
            raise SyncFailed(f"{hook.phase.value} hook {hook.ref}: an object of that name exists and is not a hook "
                             f"of application {self.app}; not replacing it")
        if DeletePolicy.BEFORE_HOOK_CREATION not in hook.delete_policies:
            return []  # applied again as it is: a finished hook is not run twice (as Argo CD's named hooks)
        if not (live.get("metadata") or {}).get("deletionTimestamp"):
            await self._delete(live, "deleted before hook creation", hook.phase)
        return [hook.ref]

    async def _clear_generated(self, hook: Hook) -> None:
        # Earlier objects have other names: nothing to wait for, only to tidy away.
        found = await self.kube.list_labelled(hook.api_version, hook.ref.kind, f"{HOOK_LABEL}={self.app}",
                                              namespaces=[hook.ref.namespace] if hook.ref.namespace else ())
        for live in found:
            meta = live.get("metadata") or {}
            if made_from(hook, live) and (meta.get("namespace") or "") == hook.ref.namespace \
                    and not meta.get("deletionTimestamp"):
                await self._delete(live, "deleted before hook creation", hook.phase)

    # ------------------------------------------------------------------ create and follow

    async def create(self, progress: Progress, hooks: Sequence[Hook]) -> None:
        """Create every hook that has not run in this operation yet."""
        for hook in hooks:
            if progress.run_of(hook) is not None:
                continue
            obj = hook_object(self.app, hook, hook_name(hook, revision=self.revision, started=self.started))
            ref = ObjectRef.of(obj)
            run = HookRun(hook.phase, hook.ref, ref, hook.api_version, hook.wave, OperationPhase.RUNNING, "created")
            try:
                await self.kube.apply(obj)
            except KubeError as exc:
                progress.record(HookRun(hook.phase, hook.ref, ref, hook.api_version, hook.wave, OperationPhase.ERROR,
                                        exc.message))
                raise SyncFailed(f"{describe(run)}: {exc.message}") from exc
            progress.record(run)
            _audit("hook created", self.app, ref, "created", hook.phase)

    async def follow(self, progress: Progress, hooks: Sequence[Hook]) -> tuple[list[HookRun], list[str]]:
        """Read each hook's object and record how it stands: (the runs still running, why others failed)."""
        running: list[HookRun] = []
        failed: list[str] = []
        for hook in hooks:
            run = progress.run_of(hook)
            if run is None:
                continue
            if not run.done:
                live = await self.kube.get(_identity(run.api_version, run.ref))
                status, message = hook_result(self.health(live))
                run = HookRun(run.phase, run.template, run.ref, run.api_version, run.wave, status, message)
                progress.record(run)
                if run.done:
                    _audit(f"hook {status.value.lower()}", self.app, run.ref, status.value.lower(), run.phase)
            if run.status is OperationPhase.RUNNING:
                running.append(run)
            elif run.status is not OperationPhase.SUCCEEDED:
                failed.append(f"{describe(run)} failed: {run.message}" if run.message else f"{describe(run)} failed")
        return running, failed

    # ------------------------------------------------------------------ after the operation

    async def delete_after(self, progress: Progress, hooks: Sequence[Hook], *, succeeded: bool) -> None:
        """HookSucceeded when the operation succeeded, HookFailed when it failed: delete the finished
        hooks with that policy (gitops-engine decides by the operation's outcome, as here). A
        deletion that fails is logged and leaves the hook; it does not change the outcome."""
        policy = DeletePolicy.HOOK_SUCCEEDED if succeeded else DeletePolicy.HOOK_FAILED
        for hook in hooks:
            run = progress.run_of(hook)
            if run is None or not run.done or run.deleted or policy not in hook.delete_policies:
                continue
            try:
                live = await self.kube.get(_identity(run.api_version, run.ref))
                if live is not None and is_hook_of(self.app, live):
                    await self._delete(live, f"deleted: {policy.value}", run.phase)
            except KubeError as exc:
                log.warning("hook not deleted", extra={"app": self.app, "object": str(run.ref), "error": exc.message})
                continue
            progress.record(HookRun(run.phase, run.template, run.ref, run.api_version, run.wave, run.status,
                                    run.message, deleted=True))

    async def _delete(self, live: KubeObject, message: str, phase: HookType) -> None:
        # In the background: the name is free at once, a Job's pods follow. Only the object that was read:
        # one created again meanwhile under the same name is someone else's.
        if await self.kube.delete(live, propagation="Background",
                                  only_if=preconditions(live, version=False)) is Deleted.CHANGED:
            _audit("hook not deleted: created again since it was read", self.app, ObjectRef.of(live), "kept", phase)
            return
        _audit(f"hook {message}", self.app, ObjectRef.of(live), "deleted", phase)


def _identity(api_version: str, ref: ObjectRef) -> KubeObject:
    return {"apiVersion": api_version, "kind": ref.kind, "metadata": {"name": ref.name, "namespace": ref.namespace}}


def _audit(message: str, app: str, ref: ObjectRef, action: str, phase: HookType) -> None:
    log.info(message, extra={"app": app, "object": str(ref), "action": action, "hook": phase.value})
