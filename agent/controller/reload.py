"""SIGHUP's work in the controller: start added apps, stop removed ones, refresh changed ones.

Unchanged apps are left alone. [agent] keys that need a restart keep their running values
(agent.config.diff). `apply_settings` returns once every changed or removed app's reconcile
in flight has finished, and removed apps with `prune_on_delete` had their objects deleted.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from agent.config import AgentSettings, AppSpec, Settings
from agent.config.diff import SettingsChange, desired_state_changed, diff_settings, effective_settings
from agent.controller.controller import Controller
from agent.controller.removal import remove_app
from agent.controller.teardown import Teardown
from agent.engine.health import HealthAssessor
from agent.source import ExportLimits, SourceOptions


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
            await controller.adoption.release(spec.name)  # a name a parent's render declared: ours now
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
    and metric series go. Its objects stay unless it had `prune_on_delete = true`; the apps it
    declared (Argo CD definitions) go along (agent.controller.adoption)."""
    await controller.adoption.parent_removed(spec.name, delete_resources=spec.prune_on_delete)
    return await remove_app(controller, spec, delete_resources=spec.prune_on_delete,
                            why="the application was removed from the configuration")
