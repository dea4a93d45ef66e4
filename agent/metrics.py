"""The agent's own Prometheus registry and metric definitions (no process-wide globals).

Two families describe the apps, git and the API server: our own `gitops_agent_*` and Argo
CD's `argocd_*` (agent.metrics_argocd), so that Argo CD's dashboards and alert rules work
unchanged. `[agent] metrics_families` turns either off at scrape time (counting goes on).
What only we measure, the agent's own health (leader, state snapshot, configuration
reloads, webhooks) and the process (`process_*`), is always there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from contextvars import ContextVar

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agent.config import AppSpec
from agent.config.agent import METRICS_FAMILIES
from agent.kube import KubeRequest
from agent.metrics_apps import AppSeries
from agent.metrics_argocd import DEST_SERVER, AppLabels, ArgoCDSeries, argocd_repo_url
from agent.model import AppStatus, OperationPhase, SyncStatus

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]

# A `_created` series per counter and histogram child doubles what a scrape carries and
# nothing here reads it (Prometheus has counter resets for that). Process-wide in the library.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in the library

# The app whose reconcile sends a request to the API server, and whether it is a dry run:
# Argo CD counts requests per app. Tasks a reconcile starts inherit it; background tasks
# start with a context of their own (agent.tasks). A key only: the values live in contexts.
_REQUESTS_FOR: ContextVar[tuple[str, bool] | None] = ContextVar("gitops_agent_requests_for", default=None)


class _Family:
    """Metrics one switch turns off together: collected only while enabled, counted always."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.enabled = True

    def describe(self) -> Iterable[Metric]:
        return list(self.registry.collect())

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect() if self.enabled else ()


RateLimits = Callable[[], Iterable[tuple[str, float]]]  # (cluster, requests per second) of each client


class _RateLimits:
    """Each cluster client's current request rate limit, read at scrape time (an adaptive one moves)."""

    def __init__(self) -> None:
        self.source: RateLimits = lambda: ()

    def describe(self) -> Iterable[Metric]:
        return [self._family()]

    def collect(self) -> Iterable[Metric]:
        family = self._family()
        for cluster, rate in self.source():
            family.add_metric([cluster], rate)
        return [family]

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily("gitops_agent_kube_rate_limit",
                                 "Requests per second the client may send to the cluster's API server now "
                                 "(kube_qps, or the adaptive rate when kube_qps is 0).", labels=["cluster"])


class Metrics:
    """Per-app series are counters and gauges; the duration histograms are agent-wide, as Argo
    CD's reconcile histogram is: 16 series per app per histogram would make a scrape of a
    thousand apps megabytes long.

    `namespace` is the `namespace` label of Argo CD's per-app series (agent.metrics_argocd).
    """

    def __init__(self, *, namespace: str = "", families: Collection[str] = METRICS_FAMILIES) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._own, self._argocd = _Family(), _Family()
        self.registry.register(self._own)
        self.registry.register(self._argocd)
        ProcessCollector(registry=self.registry)  # process_resident_memory_bytes, as Argo CD's dashboards read
        self.set_families(families)
        self.apps = AppSeries()
        self.argocd = ArgoCDSeries(namespace=namespace, registry=self._argocd.registry)
        self._app_labels: dict[str, tuple[AppSpec, str, AppLabels]] = {}
        self._define_own(self._own.registry)
        self._define_agent_health()
        self._define_sharding()

    def _define_own(self, own: CollectorRegistry) -> None:
        """The `gitops_agent` family: what the apps, git and the API server do."""
        self.reconcile_duration = Histogram(
            "gitops_agent_reconcile_duration_seconds", "Time one reconcile of an application took.",
            registry=own,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.rate_limits = _RateLimits()
        own.register(self.rate_limits)
        self.kube_requests = Counter(
            "gitops_agent_kube_requests_total", "Requests sent to the Kubernetes API.",
            ["verb", "resource_kind", "code"], registry=own,
        )
        self.app_sync_duration = Histogram(
            "gitops_agent_app_sync_duration_seconds", "Time one sync operation took, health waits included.",
            registry=own, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.git_requests = Counter(
            "gitops_agent_git_request_total", "Git network requests by repository (redacted URL) and outcome.",
            ["repo", "request", "result"], registry=own,
        )
        self.git_fetch_duration = Histogram(
            "gitops_agent_git_fetch_duration_seconds", "Time one git fetch into the repository cache took.",
            ["repo"], registry=own, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.render_duration = Histogram(
            "gitops_agent_render_duration_seconds", "Time one render took (cache hits included).",
            registry=own, buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )

    def _define_agent_health(self) -> None:
        """Always shown: what only the agent measures about itself."""
        self.webhook_requests = Counter(
            "gitops_agent_webhook_requests_total", "Webhook deliveries by provider and outcome.",
            ["provider", "result"], registry=self.registry,
        )
        self.leader = Gauge(
            "gitops_agent_leader", "1 while this replica holds the leader lease (always 1 without leader election).",
            registry=self.registry,
        )
        self.state_loads = Counter(
            "gitops_agent_state_load_total",
            "State snapshot loads at start-up by result: primary, backup (the current snapshot was unusable), "
            "empty (both unusable: state lost) or absent (no snapshot yet).",
            ["result"], registry=self.registry,
        )
        self.state_writes = Counter(
            "gitops_agent_state_write_total", "State snapshot writes by result (succeeded, failed).",
            ["result"], registry=self.registry,
        )
        self.state_write_duration = Histogram(
            "gitops_agent_state_write_duration_seconds",
            "Time one state write took (a journal append or a full snapshot: encode, write, fsync).",
            registry=self.registry, buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.state_bytes = Gauge(
            "gitops_agent_state_bytes", "Size of the last full state snapshot written.", registry=self.registry,
        )
        self.state_last_write = Gauge(
            "gitops_agent_state_last_write_timestamp_seconds", "Unix time of the last successful snapshot write.",
            registry=self.registry,
        )
        self.config_reloads = Counter(
            "gitops_agent_config_reload_total", "Configuration reloads (SIGHUP) by result (success, error).",
            ["result"], registry=self.registry,
        )
        self.config_reload_ok = Gauge(
            "gitops_agent_config_last_reload_successful",
            "1 when the last configuration reload was taken (or none was asked for), 0 while the agent runs "
            "an older configuration than its file.", registry=self.registry,
        )
        self.config_reload_ok.set(1)
        # Alerts read increase() of these: a series must exist at 0 before its first failure counts.
        for counter, results in ((self.state_writes, ("succeeded", "failed")),
                                 (self.config_reloads, ("success", "error"))):
            for result in results:
                counter.labels(result)
        self.notifications = Counter(
            "gitops_agent_notifications_total",
            "Notifications by service, trigger and result: sent, failed (after retries, or refused), "
            "dropped (the agent was stopping, or too many were waiting).",
            ["service", "trigger", "result"], registry=self.registry,
        )

    def _define_sharding(self) -> None:
        """Shown with sharding on: buckets, members, shared state and calls to peers."""
        self.shard_buckets = Gauge(
            "gitops_agent_shard_buckets", "With sharding: the buckets whose apps run on this replica (of 64).",
            registry=self.registry,
        )
        self.shard_members = Gauge(
            "gitops_agent_shard_members", "With sharding: the live members this replica sees, itself included.",
            registry=self.registry,
        )
        self.shared_state_writes = Counter(
            "gitops_agent_shared_state_writes_total",
            "With sharding: writes of a bucket's shared state (one ConfigMap) by result (succeeded, failed).",
            ["result"], registry=self.registry,
        )
        self.shared_state_bytes = Gauge(
            "gitops_agent_shared_state_bytes", "With sharding: the compressed size of the last bucket state written.",
            registry=self.registry,
        )
        self.peer_requests = Counter(
            "gitops_agent_peer_requests_total",
            "With sharding: requests to other replicas (forwarded API calls, list fan-out, webhooks) by result "
            "(answered, unreachable).", ["kind", "result"], registry=self.registry,
        )

    def set_families(self, families: Collection[str]) -> None:
        """Which families a scrape shows (METRICS_FAMILIES names them); a reload may change it."""
        self._own.enabled, self._argocd.enabled = (family in families for family in METRICS_FAMILIES)

    @contextlib.contextmanager
    def requests_for(self, app: str, *, dry_run: bool) -> Iterator[None]:
        """Count the API requests sent within (and in the tasks started within) as `app`'s."""
        token = _REQUESTS_FOR.set((app, dry_run))
        try:
            yield
        finally:
            _REQUESTS_FOR.reset(token)

    def observe_status(self, status: AppStatus, *, app: AppSpec, dest_server: str = DEST_SERVER) -> None:
        """The app's info (exactly one series, with its current status), health and out-of-sync time.
        `dest_server`: the URL of the app's cluster (Argo CD's label; `https://kubernetes.default.svc`
        for the cluster the agent runs against)."""
        name = status.name
        dest_namespace = app.namespace
        self.apps.info[name] = (dest_namespace, status.sync_status.value, status.health_status.value,
                                status.revision.sha if status.revision else "", dest_server)
        self.apps.health[name] = status.health_status
        if status.sync_status is SyncStatus.SYNCED:
            self.apps.out_of_sync_since[name] = 0.0
        elif not self.apps.out_of_sync_since.get(name):  # the first moment it left Synced, kept until Synced
            self.apps.out_of_sync_since[name] = status.reconciled_at or time.time()
        self.argocd.observe_status(status, self._labels_of(app, dest_server))

    def _labels_of(self, app: AppSpec, dest_server: str) -> AppLabels:
        """The app's Argo CD labels, made again only when its spec or cluster changes (every poll of
        every app asks; the repository URL is redacted and normalized to make them)."""
        known = self._app_labels.get(app.name)
        if known is not None and known[0] is app and known[1] == dest_server:
            return known[2]
        labels = AppLabels(project=app.project, repo=argocd_repo_url(app.repo), dest_namespace=app.namespace,
                           autosync=app.sync_policy.automated, dest_server=dest_server)
        self._app_labels[app.name] = (app, dest_server, labels)
        return labels

    def observe_reconcile(self, name: str, result: str, seconds: float) -> None:
        self.apps.reconciles[(name, result)] += 1
        self.reconcile_duration.observe(seconds)
        self.argocd.observe_reconcile(seconds)

    def observe_sync(self, name: str, phase: OperationPhase, seconds: float, *, dry_run: bool = False) -> None:
        """A sync operation that ended; a dry run is one for Argo CD's family only (it changed nothing)."""
        self.argocd.observe_sync(name, phase, seconds, dry_run=dry_run)
        if not dry_run:
            self.apps.syncs[(name, phase.value)] += 1
            self.app_sync_duration.observe(seconds)

    def forget_app(self, name: str) -> None:
        """Remove every series of an app that left the configuration."""
        self.apps.forget(name)
        self.argocd.forget(name)
        self._app_labels.pop(name, None)

    def observe_kube_request(self, request: KubeRequest) -> None:
        self.kube_requests.labels(request.verb, request.kind, str(request.code)).inc()
        self.argocd.observe_kube_request(_REQUESTS_FOR.get(), request)

    def observe_git_request(self, repo: str, request: str, result: str, seconds: float) -> None:
        """`repo` must already be redacted (agent.source.redact_url)."""
        self.git_requests.labels(repo, request, result).inc()
        self.argocd.observe_git_request(repo, request, seconds)

    def observe_git_fetch(self, repo: str, seconds: float) -> None:
        self.git_fetch_duration.labels(repo).observe(seconds)

    def observe_webhook(self, provider: str, result: str) -> None:
        self.webhook_requests.labels(provider, result).inc()

    def observe_render(self, app: str, result: str, seconds: float) -> None:
        self.apps.renders[(app, result)] += 1
        self.render_duration.observe(seconds)

    def observe_state_load(self, result: str) -> None:
        self.state_loads.labels(result).inc()

    def observe_state_write(self, *, ok: bool, seconds: float, size: int, full: bool = True) -> None:
        """A write of the state: a full snapshot, or (not `full`) the changes appended to the journal."""
        self.state_writes.labels("succeeded" if ok else "failed").inc()
        self.state_write_duration.observe(seconds)
        if ok:
            if full:
                self.state_bytes.set(size)
            self.state_last_write.set(time.time())

    def observe_shards(self, *, working: bool, buckets: int, members: int) -> None:
        self.leader.set(1 if working else 0)  # a working member shows its own apps' series, as a leader does
        self.shard_buckets.set(buckets)
        self.shard_members.set(members)

    def observe_shared_write(self, *, ok: bool, size: int) -> None:
        self.shared_state_writes.labels("succeeded" if ok else "failed").inc()
        if ok:
            self.shared_state_bytes.set(size)

    def observe_peer_request(self, kind: str, result: str) -> None:
        self.peer_requests.labels(kind, result).inc()

    def observe_config_reload(self, *, ok: bool) -> None:
        self.config_reloads.labels("success" if ok else "error").inc()
        self.config_reload_ok.set(1 if ok else 0)

    def observe_notification(self, service: str, trigger: str, result: str) -> None:
        self.notifications.labels(service, trigger, result).inc()

    def pieces(self) -> Iterator[bytes]:
        """A scrape, piece by piece: the agent-wide series, then each family's per-app ones (made as
        they are taken: see agent.metrics_text)."""
        yield bytes(generate_latest(self.registry))
        if self._own.enabled:
            yield from (piece.encode() for piece in self.apps.pieces())
        if self._argocd.enabled:
            yield from (piece.encode() for piece in self.argocd.pieces())

    def exposition(self) -> bytes:
        return b"".join(self.pieces())
