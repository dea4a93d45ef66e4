"""SIGHUP: read the configuration file again and run with it; keep the running one when it is invalid.

    RELOADING=1 to systemd → read and validate the file → [[clusters]] → controller (apps, [agent],
    [[repositories]], [[health_checks]], [[projects]], [notifications]), webhook receiver and API
    access ([auth] and project roles) → READY=1 again

An invalid file changes nothing: the error (naming file, table and key) is logged, counted
in `gitops_agent_config_reload_total{result="error"}` (and
`gitops_agent_config_last_reload_successful` is 0 until a reload is taken), and the agent
runs on with what it had. A SIGHUP that arrives during a reload queues exactly one more
reload after it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from agent.config import Settings, load_settings
from agent.config.diff import SettingsChange
from agent.controller import Controller
from agent.controller.reload import ReloadSummary, apply_settings
from agent.errors import ConfigError
from agent.kube.clusters import ClusterRegistry
from agent.metrics import Metrics
from agent.notify import Notifier
from agent.server.auth import ApiAuth
from agent.server.webhook import WebhookReceiver

log = logging.getLogger(__name__)


class Reloader:
    def __init__(self, path: Path | None, *, controller: Controller, metrics: Metrics, notifier: Notifier,
                 webhook: WebhookReceiver | None = None, auth: ApiAuth | None = None,
                 clusters: ClusterRegistry | None = None) -> None:
        self.path = path
        self._clusters = clusters
        self._controller = controller
        self._metrics = metrics
        self._notifier = notifier
        self._webhook = webhook
        self._auth = auth
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def request(self) -> None:
        """The SIGHUP handler: reload now, or once more after the reload in progress."""
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="config-reload")
        self._task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._metrics.observe_config_reload(ok=False)
            log.error("configuration reload failed", exc_info=task.exception())

    async def close(self) -> None:
        """Cancel a reload in progress (shutdown)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        self._again = True
        while self._again:
            self._again = False
            await self.reload()

    async def reload(self) -> ReloadSummary | None:
        """One reload; None when the file was not taken (the running configuration is kept)."""
        self._notifier.reloading()
        try:
            return await self._reload()
        finally:
            self._notifier.reloaded()

    async def _reload(self) -> ReloadSummary | None:
        if self.path is None:
            log.warning("SIGHUP received, but the agent was not started from a configuration file")
            return None
        try:
            settings = await asyncio.to_thread(load_settings, self.path)
        except ConfigError as exc:
            self._metrics.observe_config_reload(ok=False)
            log.error("configuration reload failed; running on with the previous configuration",
                      extra={"error": str(exc)})
            return None
        if self._clusters is not None:
            await self._reload_clusters(settings)
        summary = await apply_settings(self._controller, settings)
        self._metrics.set_families(self._controller.settings.agent.metrics_families)
        if self._webhook is not None:
            self._webhook.reconfigure(settings)
        self._reconfigure_auth()
        self._metrics.observe_config_reload(ok=True)
        log_change(self.path, summary)
        return summary


    def _reconfigure_auth(self) -> None:
        """New policies, roles or token file for the API; the running ones stay when they cannot be used."""
        running = self._controller.settings  # the effective settings: [auth] kept when it needs a restart
        if self._auth is None or running.auth is None:
            return
        try:
            self._auth.reconfigure(running.auth, projects=self._controller.projects.all())
        except ConfigError as exc:
            log.error("API access not reconfigured; the previous tokens and policies stay", extra={"error": str(exc)})
    async def _reload_clusters(self, settings: Settings) -> None:
        """[[clusters]] as the file says now, and the cluster Secrets read again: before apps that name a
        new cluster start. `credentials_namespace` itself changes only with a restart."""
        assert self._clusters is not None
        if settings.clusters != self._controller.settings.clusters:
            await self._clusters.configure(settings.clusters)
        namespace = self._controller.settings.agent.credentials_namespace
        if namespace:
            await self._clusters.refresh_secrets(namespace)


def describe(change: SettingsChange) -> str:
    """One line for the log: `1 added (c), 1 removed (b), 1 changed (a); [agent] poll_interval`."""
    parts = [f"{len(specs)} {verb} ({', '.join(spec.name for spec in specs)})"
             for verb, specs in (("added", change.added), ("removed", change.removed), ("changed", change.changed))
             if specs]
    if change.applied_keys:
        parts.append(f"[agent] {', '.join(change.applied_keys)}")
    parts += [f"[[{table}]]" for table, changed in (("repositories", change.repositories),
                                                     ("health_checks", change.health_checks),
                                                     ("projects", change.projects),
                                                     ("clusters", change.clusters)) if changed]
    if change.notifications:
        parts.append("[notifications]")
    if change.auth:
        parts.append("[auth]")
    return "; ".join(parts) or "nothing changed"


def log_change(path: Path, summary: ReloadSummary) -> None:
    change = summary.change
    log.info("configuration reloaded from %s: %s", path, describe(change))
    if change.auth_restart:
        log.warning("configuration reload: [auth] was added or removed, or its TLS files changed; that takes "
                    "effect only when the agent restarts, and the running API access is kept until then")
    if change.restart_keys:
        log.warning("configuration reload: [agent] %s change only when the agent restarts; "
                    "the running values are kept until then", ", ".join(change.restart_keys))
