"""The process: wire the parts together, serve, reconcile, reload on SIGHUP, and shut down cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl

from agent import __version__
from agent.config import AgentSettings, Settings
from agent.config.auth import is_loopback
from agent.controller import Controller, Reconciler
from agent.controller.fleet import FleetReconciler
from agent.controller.reload import source_options
from agent.controller.repo_credentials import RepoCredentialSecrets
from agent.engine.fingerprint import live_digest
from agent.engine.health import HealthAssessor
from agent.errors import AgentError
from agent.kube import KubeClient
from agent.kube.clusters import ClusterOptions, ClusterRegistry
from agent.kube.incluster import pod_namespace
from agent.kube.ratelimit import make_limiter
from agent.kube.watch import WatchCache
from agent.lifecycle import Leading, Lifecycle, build_leadership, build_sharding
from agent.metrics import Metrics
from agent.model import IN_CLUSTER
from agent.notifications import Notifications
from agent.notify import Notifier
from agent.reloader import Reloader
from agent.render import Renderer
from agent.server import build_app, serve
from agent.server.auth import ApiAuth, server_tls
from agent.server.sharding import webhook_forwarder
from agent.server.webhook import WebhookReceiver
from agent.shard.coordinator import ShardCoordinator
from agent.shard.peers import Peers, peer_tls
from agent.source import GitSource
from agent.state import StateStore

log = logging.getLogger(__name__)

DRAIN_TIMEOUT = 8.0
NOTIFICATION_DRAIN = 3.0  # at shutdown, for messages in flight (after the final snapshot holds their marks)


def cluster_registry(settings: Settings, kube: KubeClient, metrics: Metrics) -> ClusterRegistry:
    """The home cluster (`kube`), `[[clusters]]`, and later the cluster Secrets: a client and watch cache each;
    their request rates are what `gitops_agent_kube_rate_limit` shows."""
    agent = settings.agent
    # managedFields are large; the cache keeps them only when an ignore rule reads them.
    keep_managed = any(rule.managed_fields_managers for app in settings.applications
                       for rule in app.ignore_differences)
    options = ClusterOptions(digest=live_digest, keep_managed_fields=keep_managed,
                             observer=metrics.observe_kube_request, kube_qps=agent.kube_qps,
                             kube_burst=agent.kube_burst)
    registry = ClusterRegistry(kube, clusters=settings.clusters, options=options)
    metrics.rate_limits.source = lambda: [(cluster.name, cluster.kube.limiter.rate) for cluster in registry.clusters()
                                          if cluster.kube is not None and cluster.kube.limiter is not None]
    return registry


def build_controller(settings: Settings, kube: KubeClient, metrics: Metrics, *,
                     clusters: ClusterRegistry | None = None) -> Controller:
    """Source, renderer, reconcilers and controller for `settings`: the agent without its server.
    `kube` is the home cluster's client; `clusters` the registry around it (made here when not given)."""
    agent = settings.agent
    source = GitSource(agent.state_dir / "repos", options=source_options(agent), repositories=settings.repositories,
                       observer=metrics)
    renderer = Renderer(agent.render, source, observer=metrics)
    registry = clusters or cluster_registry(settings, kube, metrics)
    health = HealthAssessor(settings.health_checks)

    def reconciler_for(cluster_kube: KubeClient, watch: WatchCache) -> Reconciler:
        return Reconciler(source=source, kube=cluster_kube, renderer=renderer, health=health, watch=watch,
                          history_limit=agent.history_limit)

    fleet = FleetReconciler(clusters=registry, source=source, make=reconciler_for)
    state = StateStore(agent.state_dir, observer=metrics)
    notifications = Notifications(settings.notifications, observer=metrics, durable=state.until_written)
    controller = Controller(settings, fleet, metrics, state=state, notifications=notifications,
                            dest_server=lambda spec: registry.server_of(spec.cluster), source=source)
    registry.set_listener(controller.on_live_change)
    registry.on_event(controller.wake_cluster)
    fleet.use_claims(controller.apps.claims)  # what every app declares, for the ownership rules
    fleet.use_projects(controller.projects.get)  # the project rules, read at every reconcile
    return controller


def api_access(settings: Settings) -> tuple[ApiAuth | None, ssl.SSLContext | None]:
    """Tokens, RBAC and TLS of the API, read now; AgentError (or OSError, ssl.SSLError for TLS) when unusable."""
    if settings.auth is None:
        if settings.agent.insecure_no_auth and not is_loopback(settings.agent.listen_host):
            log.warning("the API has no [auth] and listens on %s: anyone who can reach it may sync and roll back "
                        "every application (insecure_no_auth = true)", settings.agent.listen)
        return None, None
    auth = ApiAuth(settings.auth, projects=settings.projects)
    count = auth.start()
    context = server_tls(settings.auth)
    log.info("API access: %d tokens, %s", count, "HTTPS" if context else "HTTP",
             extra={"token_file": settings.auth.token_file})
    return auth, context


def _api_access_logged(settings: Settings) -> tuple[ApiAuth | None, ssl.SSLContext | None] | None:
    """`api_access`, or None after logging why the API cannot be served as configured."""
    try:
        return api_access(settings)
    except AgentError as exc:
        log.error("%s", exc)
    except (OSError, ssl.SSLError) as exc:
        auth = settings.auth
        log.error("[auth] tls_cert_file %s / tls_key_file %s: cannot be used: %s", auth and auth.tls_cert_file,
                  auth and auth.tls_key_file, getattr(exc, "strerror", None) or exc)
    return None
def follow_projects(controller: Controller, auth: ApiAuth | None) -> None:
    """API access follows every project, AppProjects adopted from Git included: their roles grant access."""
    if auth is None:
        return

    def reconfigure(_: set[str]) -> None:
        running = controller.settings.auth
        if running is None:
            return
        try:
            auth.reconfigure(running, projects=controller.projects.all())
        except (AgentError, ValueError) as exc:  # a policy that cannot be read: the previous roles stay
            log.error("API access not reconfigured for the projects; the previous policies stay",
                      extra={"error": str(exc)})

    controller.projects.on_change(reconfigure)
    reconfigure(set())  # the projects the snapshot brought back already


async def start_repo_credentials(controller: Controller, kube: KubeClient,
                                 agent: AgentSettings) -> RepoCredentialSecrets | None:
    """Argo CD's repository Secrets in `credentials_namespace`, read before the first reconcile, then watched."""
    if not agent.credentials_namespace or controller.adoption.source is None:
        return None
    secrets = RepoCredentialSecrets(kube, agent.credentials_namespace, source=controller.adoption.source,
                                    on_change=controller.retry_failed)
    await secrets.start()
    return secrets


async def start_clusters(clusters: ClusterRegistry, agent: AgentSettings) -> None:
    """Clients for every configured cluster, and the cluster Secrets read before the first reconcile
    (so their apps do not show Unknown first), then again every poll interval."""
    await clusters.start()
    if agent.credentials_namespace:
        read = await clusters.refresh_secrets(agent.credentials_namespace)
        clusters.follow_secrets(agent.credentials_namespace, interval=agent.poll_interval, read=read)


def _make_state_dir(agent: AgentSettings) -> bool:
    try:
        agent.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        log.error("cannot create state_dir %s: %s", agent.state_dir, exc.strerror)
        return False
    return True


def _coordination(settings: Settings, kube: KubeClient, controller: Controller, metrics: Metrics,
                  clusters: ClusterRegistry, *, tls: bool) -> tuple[Leading, ShardCoordinator | None, Peers | None]:
    """Who decides which apps this replica runs: the shard coordinator and its peers (sharding),
    else leader election (or nobody: every app runs here)."""
    agent = settings.agent
    if not agent.sharding.enabled:
        return build_leadership(agent, kube, controller, metrics, gate_writes=clusters.gate_writes), None, None
    shards = build_sharding(agent, kube, controller, metrics, gate_writes=clusters.gate_writes, tls=tls)
    peers = Peers(identity=shards.identity, observer=metrics,
                  ssl_context=peer_tls(settings.auth.tls_cert_file if settings.auth else ""))
    return shards, shards, peers


async def _close(reloader: Reloader, repo_secrets: RepoCredentialSecrets | None, clusters: ClusterRegistry,
                 kube: KubeClient, peers: Peers | None) -> None:
    """Release what the agent opened, last the API server's connections."""
    if peers is not None:
        await peers.close()
    await reloader.close()
    if repo_secrets is not None:
        await repo_secrets.close()
    await clusters.close()
    await kube.close()


async def run_agent(settings: Settings) -> int:
    """Run until SIGTERM or SIGINT; returns the process exit code."""
    agent = settings.agent
    notifier = Notifier.from_environment()  # before any subprocess could inherit NOTIFY_SOCKET
    access = _api_access_logged(settings)
    if access is None:
        return 1
    auth, tls = access
    if not _make_state_dir(agent):
        return 1
    metrics = Metrics(namespace=pod_namespace(), families=agent.metrics_families)
    try:
        kube = await KubeClient.connect(agent.kubeconfig, agent.context, observer=metrics.observe_kube_request,
                                        limiter=make_limiter(agent.kube_qps, agent.kube_burst, name=IN_CLUSTER))
    except AgentError as exc:
        log.error("cannot configure the Kubernetes client: %s", exc)
        return 1
    clusters = cluster_registry(settings, kube, metrics)
    controller = build_controller(settings, kube, metrics, clusters=clusters)
    try:
        leadership, shards, peers = _coordination(settings, kube, controller, metrics, clusters, tls=tls is not None)
    except AgentError as exc:
        log.error("%s", exc)
        await kube.close()
        return 1
    await controller.restore()  # status is served from the snapshot at once
    follow_projects(controller, auth)
    await start_clusters(clusters, agent)
    repo_secrets = await start_repo_credentials(controller, kube, agent)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    webhook = WebhookReceiver(settings, controller, metrics)
    if shards is not None and peers is not None:
        webhook.forward = webhook_forwarder(shards, peers)
    reloader = Reloader(settings.source, controller=controller, metrics=metrics, notifier=notifier, webhook=webhook,
                        auth=auth, clusters=clusters)
    loop.add_signal_handler(signal.SIGHUP, reloader.request)
    try:
        app = build_app(controller=controller, metrics_=metrics, kube_check=kube.ping, webhook=webhook,
                        leadership=leadership, auth=auth, cluster_check=clusters.readiness, shards=shards, peers=peers)
        async with serve(app, agent.listen_host, agent.listen_port, ssl_context=tls):
            log.info("gitops-agent %s started: %d applications, %d clusters, API server %s, listening on %s",
                     __version__, len(settings.applications), len(clusters.clusters()), kube.host, agent.listen)
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
        await _close(reloader, repo_secrets, clusters, kube, peers)
    log.info("stopped")
    return 0
