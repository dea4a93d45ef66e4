"""SIGHUP: read the configuration file again and run with it; keep the running one when it is invalid.

    RELOADING=1 to systemd → read and validate the file → controller (apps, [agent],
    [[repositories]], [[health_checks]], [notifications]) and webhook receiver → READY=1 again

An invalid file changes nothing: the error (naming file, table and key) is logged, counted
in `gitops_agent_config_reload_total{result="error"}`, and the agent runs on with what it
had. A SIGHUP that arrives during a reload queues exactly one more reload after it.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from agent.config import load_settings
from agent.config.diff import SettingsChange
from agent.controller import Controller
from agent.controller.reload import ReloadSummary, apply_settings
from agent.errors import ConfigError
from agent.metrics import Metrics
from agent.notify import Notifier
from agent.server.webhook import WebhookReceiver

log = logging.getLogger(__name__)


class Reloader:
    def __init__(self, path: Path | None, *, controller: Controller, metrics: Metrics, notifier: Notifier,
                 webhook: WebhookReceiver | None = None) -> None:
        self.path = path
        self._controller = controller
        self._metrics = metrics
        self._notifier = notifier
        self._webhook = webhook
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
            self._metrics.config_reloads.labels("error").inc()
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
            self._metrics.config_reloads.labels("error").inc()
            log.error("configuration reload failed; running on with the previous configuration",
                      extra={"error": str(exc)})
            return None
        summary = await apply_settings(self._controller, settings)
        if self._webhook is not None:
            self._webhook.reconfigure(settings)
        self._metrics.config_reloads.labels("success").inc()
        log_change(self.path, summary)
        return summary


def describe(change: SettingsChange) -> str:
    """One line for the log: `1 added (c), 1 removed (b), 1 changed (a); [agent] poll_interval`."""
    parts = [f"{len(specs)} {verb} ({', '.join(spec.name for spec in specs)})"
             for verb, specs in (("added", change.added), ("removed", change.removed), ("changed", change.changed))
             if specs]
    if change.applied_keys:
        parts.append(f"[agent] {', '.join(change.applied_keys)}")
    parts += [f"[[{table}]]" for table, changed in (("repositories", change.repositories),
                                                     ("health_checks", change.health_checks)) if changed]
    if change.notifications:
        parts.append("[notifications]")
    return "; ".join(parts) or "nothing changed"


def log_change(path: Path, summary: ReloadSummary) -> None:
    change = summary.change
    log.info("configuration reloaded from %s: %s", path, describe(change))
    if change.restart_keys:
        log.warning("configuration reload: [agent] %s change only when the agent restarts; "
                    "the running values are kept until then", ", ".join(change.restart_keys))
