"""The process: wire the parts together, serve, reconcile, and shut down cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal

from agent import __version__
from agent.config import Settings
from agent.controller import Controller, Reconciler
from agent.errors import AgentError
from agent.kube import KubeClient
from agent.metrics import Metrics
from agent.render import Kustomize
from agent.server import build_app, serve
from agent.source import GitSource

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 8.0


async def run_agent(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; returns the process exit code."""
    agent = settings.agent
    try:
        agent.state_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.error("cannot create state_dir %s: %s", agent.state_dir, exc.strerror)
        return 1
    metrics = Metrics()
    try:
        kube = await KubeClient.connect(agent.kubeconfig, agent.context, observer=metrics.observe_kube_request)
    except AgentError as exc:
        log.error("cannot configure the Kubernetes client: %s", exc)
        return 1
    source = GitSource(agent.state_dir / "repos", max_concurrent_fetches=agent.max_concurrent_fetches)
    reconciler = Reconciler(source=source, kube=kube, kustomize=Kustomize())
    controller = Controller(settings, reconciler, metrics)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with serve(build_app(controller=controller, metrics_=metrics, kube_check=kube.ping),
                         agent.listen_host, agent.listen_port):
            log.info("gitops-agent %s started: %d applications, API server %s, listening on %s",
                     __version__, len(settings.applications), kube.host, agent.listen)
            controller.start()
            await stop.wait()
            log.info("stopping: draining in-flight reconciles")
            await controller.stop(drain_timeout=DRAIN_TIMEOUT)
    except OSError as exc:
        log.error("cannot listen on %s: %s", agent.listen, exc.strerror or exc)
        return 1
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await kube.close()
    log.info("stopped")
    return 0
