"""PostDelete hooks: run when an app with `prune_on_delete = true` leaves the configuration, after its
objects are gone, as Argo CD runs them when an Application is deleted.

The hooks come from the app's render at its tracked revision. They run once the deleted
objects have disappeared (or after `health_timeout`, when some are still going away), the
agent waits for them to complete (also at most `health_timeout`: nobody would step them
later), and deletes them when all succeeded; a failed one is left for a person to read
(unless it says HookFailed). Every step is an audit event; nothing here raises.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from agent.config import AppSpec
from agent.engine.health import Health
from agent.engine.progress import Progress, SyncFailed
from agent.engine.sync_hooks import HookRunner
from agent.errors import KubeError, KubeUnreachable
from agent.kube import KubeClient
from agent.model import (
    DeletePolicy,
    Hook,
    HookRun,
    KubeObject,
    ObjectRef,
    OperationPhase,
    Revision,
    SyncOperation,
    SyncTrigger,
)

log = logging.getLogger("agent.controller.teardown")

POLL = 0.5


async def run_post_delete(kube: KubeClient, app: AppSpec, hooks: Sequence[Hook], revision: Revision, *,
                          deleted: Sequence[tuple[str, ObjectRef]], health: Callable[[KubeObject | None], Health],
                          clock: Callable[[], float] = time.monotonic) -> tuple[HookRun, ...]:
    """Wait for `deleted` (apiVersion, object) to be gone, then run the hooks to completion."""
    deadline = clock() + app.sync_policy.health_timeout
    runner = HookRunner(kube, app.name, revision.sha, time.time(), health)
    progress = Progress(SyncOperation(revision, SyncTrigger.AUTO, prune=False, manual=False, started=time.time()))
    try:
        await _until(lambda: _all_gone(kube, deleted), deadline, clock)
        await _until(lambda: _cleared(runner, progress, hooks), deadline, clock)
        await runner.create(progress, hooks)
        await _until(lambda: _finished(runner, progress, hooks), deadline, clock)
        if all(run.status is OperationPhase.SUCCEEDED for run in progress.runs):
            # The app is gone: nobody would ever clean these up.
            tidy = [Hook(h.phase, h.template, h.wave, h.delete_policies | {DeletePolicy.HOOK_SUCCEEDED}, h.origin)
                    for h in hooks]
            await runner.delete_after(progress, tidy, succeeded=True)
        else:
            await runner.delete_after(progress, hooks, succeeded=False)
    except (SyncFailed, KubeError, KubeUnreachable) as exc:
        log.error("PostDelete hooks failed", extra={"app": app.name, "error": str(exc)})
    for run in progress.runs:
        level = logging.INFO if run.status is OperationPhase.SUCCEEDED else logging.WARNING
        log.log(level, "PostDelete hook %s", run.status.value.lower(), extra={
            "app": app.name, "object": str(run.ref), "error": run.message if run.status is not
            OperationPhase.SUCCEEDED else ""})
    return tuple(progress.runs)


async def _until(done: Callable[[], Awaitable[bool]], deadline: float, clock: Callable[[], float]) -> None:
    """Poll `done` until it is true or the deadline passed."""
    while not await done():
        if clock() > deadline:
            return
        await asyncio.sleep(POLL)


async def _all_gone(kube: KubeClient, deleted: Sequence[tuple[str, ObjectRef]]) -> bool:
    for api_version, ref in deleted:
        found = await kube.get({"apiVersion": api_version, "kind": ref.kind,
                                "metadata": {"name": ref.name, "namespace": ref.namespace}})
        if found is not None:
            return False
    return True


async def _cleared(runner: HookRunner, progress: Progress, hooks: Sequence[Hook]) -> bool:
    return not await runner.clear(progress, hooks)


async def _finished(runner: HookRunner, progress: Progress, hooks: Sequence[Hook]) -> bool:
    running, _ = await runner.follow(progress, hooks)
    return not running
