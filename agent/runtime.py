"""The process: wire the parts together, serve, reconcile, reload on SIGHUP, and shut down cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from agent import __version__
from agent.config import Settings
from agent.controller import Controller, Reconciler
from agent.controller.reload import source_options
from agent.engine.fingerprint import live_digest
from agent.engine.health import HealthAssessor
from agent.errors import AgentError
from agent.kube import KubeClient
from agent.kube.ratelimit import TokenBucket
from agent.kube.watch import WatchCache
from agent.lifecycle import Lifecycle, build_leadership
from agent.metrics import Metrics
from agent.notifications import Notifications
from agent.notify import Notifier
from agent.reloader import Reloader
from agent.render import Renderer
from agent.server import build_app, serve
from agent.server.webhook import WebhookReceiver
from agent.source import GitSource
from agent.state import StateStore

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 8.0
NOTIFICATION_DRAIN = 3.0  # at shutdown, for messages in flight (after the final snapshot holds their marks)


def build_controller(settings: Settings, kube: KubeClient, metrics: Metrics) -> Controller:
    """Source, renderer, reconciler and controller for `settings`: the agent without its server."""
    agent = settings.agent
    source = GitSource(agent.state_dir / "repos", options=source_options(agent), repositories=settings.repositories,
                       observer=metrics)
    renderer = Renderer(agent.render, source, observer=metrics)
    # managedFields are large; the cache keeps them only when an ignore rule reads them.
    keep_managed = any(rule.managed_fields_managers for app in settings.applications
                       for rule in app.ignore_differences)
    watch = WatchCache(kube, digest=live_digest, keep_managed_fields=keep_managed)
    reconciler = Reconciler(source=source, kube=kube, renderer=renderer,
                            health=HealthAssessor(settings.health_checks), watch=watch,
                            history_limit=agent.history_limit)
    state = StateStore(agent.state_dir, observer=metrics)
    notifications = Notifications(settings.notifications, observer=metrics, durable=state.until_written)
    controller = Controller(settings, reconciler, metrics, state=state, notifications=notifications)
    watch.set_listener(controller.on_live_change)
    return controller


async def run_agent(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; returns the process exit code."""
    agent = settings.agent
    notifier = Notifier.from_environment()  # before any subprocess could inherit NOTIFY_SOCKET
    try:
        agent.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.error("cannot create state_dir %s: %s", agent.state_dir, exc.strerror)
        return 1
    metrics = Metrics()
    try:
        kube = await KubeClient.connect(agent.kubeconfig, agent.context, observer=metrics.observe_kube_request,
                                        limiter=TokenBucket(agent.kube_qps, agent.kube_burst))
    except AgentError as exc:
        log.error("cannot configure the Kubernetes client: %s", exc)
        return 1
    controller = build_controller(settings, kube, metrics)
    try:
        leadership = build_leadership(agent, kube, controller, metrics)
    except AgentError as exc:
        log.error("%s", exc)
        await kube.close()
        return 1
    await controller.restore()  # status is served from the snapshot at once
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    webhook = WebhookReceiver(settings, controller, metrics)
    reloader = Reloader(settings.source, controller=controller, metrics=metrics, notifier=notifier, webhook=webhook)
    loop.add_signal_handler(signal.SIGHUP, reloader.request)
    try:
        app = build_app(controller=controller, metrics_=metrics, kube_check=kube.ping, webhook=webhook,
                        leadership=leadership)
        async with serve(app, agent.listen_host, agent.listen_port):
            log.info("gitops-agent %s started: %d applications, API server %s, listening on %s",
                     __version__, len(settings.applications), kube.host, agent.listen)
            # Leads (controller running) or follows; on stop: STOPPING=1, drain, release the lease.
            await Lifecycle(controller=controller, leadership=leadership, notifier=notifier).run(
                stop, drain_timeout=DRAIN_TIMEOUT)
            await controller.write_state()  # the final snapshot, after the last reconcile was recorded
            if controller.notifications is not None:
                await controller.notifications.close(drain=NOTIFICATION_DRAIN)
    except OSError as exc:
        log.error("cannot listen on %s: %s", agent.listen, exc.strerror or exc)
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(sig)
        await reloader.close()
        await kube.close()
    log.info("stopped")
    return 0
