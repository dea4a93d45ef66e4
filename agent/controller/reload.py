"""SIGHUP's work in the controller: start added apps, stop removed ones, refresh changed ones.

Unchanged apps are left alone. [agent] keys that need a restart keep their running values
(agent.config.diff). `apply_settings` returns once every changed or removed app's reconcile
in flight has finished, and removed apps with `prune_on_delete` had their objects deleted.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from agent.config import AgentSettings, AppSpec, Settings
from agent.config.diff import SettingsChange, desired_state_changed, diff_settings, effective_settings
from agent.controller.controller import Controller
from agent.controller.teardown import Teardown
from agent.engine.health import HealthAssessor
from agent.errors import AgentError
from agent.source import ExportLimits, SourceOptions

log = logging.getLogger("agent.controller.controller")  # the events' logger name stays the controller's


@dataclass(frozen=True)
class ReloadSummary:
    change: SettingsChange
    # Per app removed with `prune_on_delete = true`: what was deleted, kept, or failed.
    teardowns: dict[str, Teardown] = field(default_factory=dict)


def source_options(agent: AgentSettings) -> SourceOptions:
    """How the git source behaves, from `[agent]`; one ls-remote per repository per poll interval."""
    return SourceOptions(
        max_concurrent_fetches=agent.max_concurrent_fetches,
        timeout=agent.git_timeout,
        ls_remote_ttl=agent.poll_interval,
        limits=ExportLimits(max_files=agent.max_repo_files, max_file_bytes=agent.max_file_size,
                            max_total_bytes=agent.max_repo_size, max_seconds=agent.git_timeout),
    )


async def apply_settings(controller: Controller, settings: Settings) -> ReloadSummary:
    """Run with reloaded settings."""
    async with controller.reload_lock:
        await controller.restore()
        change = diff_settings(controller.settings, settings)
        controller.settings = effective = effective_settings(controller.settings, settings)
        controller.reconciler.reconfigure(source=source_options(effective.agent), repositories=effective.repositories,
                                          health=HealthAssessor(effective.health_checks),
                                          history_limit=effective.agent.history_limit)
        if change.projects:
            controller.projects.configure(effective.projects)
        if controller.notifications is not None and change.notifications:
            controller.notifications.reconfigure(effective.notifications)
        for spec in change.added:
            controller.spawn_loop(controller.apps.add(spec))
        for name, worker in list(controller.apps.workers.items()):
            if change.repositories and worker.failures:
                controller.request_refresh(name)  # new credentials may fix it: ask the git server again
            elif change.health_checks:  # every app's health may read differently now
                worker.wake.set()
        changing = asyncio.gather(*(_respecify(controller, spec) for spec in change.changed))
        removing = asyncio.gather(*(_remove(controller, spec) for spec in change.removed))
        _, teardowns = await asyncio.gather(changing, removing)
    return ReloadSummary(change, {spec.name: teardown for spec, teardown in zip(change.removed, teardowns,
                                                                                 strict=True) if teardown})


async def _respecify(controller: Controller, spec: AppSpec) -> None:
    """Reconcile a changed app with its new spec now; a reconcile in flight finishes first."""
    worker = controller.apps.workers[spec.name]
    async with worker.lock:
        controller.apps.respecify(spec, desired_changed=desired_state_changed(worker.spec, spec))
    controller.request_refresh(spec.name)


async def _remove(controller: Controller, spec: AppSpec) -> Teardown | None:
    """Stop an app the configuration lost: its reconcile in flight finishes, its loop ends, its status
    and metric series go. Its objects stay unless it had `prune_on_delete = true`."""
    worker = controller.apps.workers[spec.name]
    async with worker.lock:
        await controller.cancel_loop(worker, "the application was removed from the configuration")
        teardown = await _teardown(controller, spec) if spec.prune_on_delete else None
        controller.apps.remove(spec.name, keep=not spec.prune_on_delete)
    if not spec.prune_on_delete:
        log.info("application removed from the configuration; its objects stay in the cluster",
                 extra={"app": spec.name})
    return teardown


async def _teardown(controller: Controller, spec: AppSpec) -> Teardown | None:
    """Delete what a removed app owns (prune_on_delete); None when nothing could be looked at."""
    if not controller.running:
        log.warning("application removed with prune_on_delete, but this replica does not lead: "
                    "nothing deleted", extra={"app": spec.name})
        return None
    problem = "cannot list its objects; nothing deleted"
    failed = await controller.ensure_inventory(controller.apps.workers[spec.name])  # what it owns, if not known
    state = controller.apps.state(spec.name)
    if failed is not None or state is None:
        log.error("application removed with prune_on_delete: %s", problem,
                  extra={"app": spec.name, "error": str(failed)})
        return None
    try:
        teardown = await controller.reconciler.delete_owned(
            spec, state.owned_kinds, {entry.ref.namespace for entry in state.inventory if entry.ref.namespace})
    except AgentError as exc:  # the API's answer, an unreachable or unknown cluster: nothing deleted
        log.error("application removed with prune_on_delete: %s", problem, extra={"app": spec.name, "error": str(exc)})
        return None
    level = logging.WARNING if teardown.failed else logging.INFO
    log.log(level, "application removed with prune_on_delete: %d objects deleted, %d kept, %d failed, "
            "%d PostDelete hooks run", len(teardown.deleted), len(teardown.kept), len(teardown.failed),
            len(teardown.hooks), extra={"app": spec.name})
    return teardown
