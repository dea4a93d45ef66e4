"""The agent's own Prometheus registry and metric definitions (no process-wide globals)."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agent.model import AppStatus, HealthStatus, OperationPhase, SyncStatus

__all__ = ["CONTENT_TYPE_LATEST", "Metrics"]


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.app_info = Gauge(
            "gitops_agent_app_info", "Information about an application; the value is always 1.",
            ["name", "dest_namespace", "sync_status", "health_status", "revision"], registry=self.registry,
        )
        self.reconcile_duration = Histogram(
            "gitops_agent_reconcile_duration_seconds", "Time one reconcile of an application took.",
            ["name"], registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.reconcile_total = Counter(
            "gitops_agent_reconcile_total", "Reconciles by application and outcome.",
            ["name", "result"], registry=self.registry,
        )
        self.kube_requests = Counter(
            "gitops_agent_kube_requests_total", "Requests sent to the Kubernetes API.",
            ["verb", "resource_kind", "code"], registry=self.registry,
        )
        self.app_sync_total = Counter(
            "gitops_agent_app_sync_total", "Sync operations by application and phase.",
            ["name", "phase"], registry=self.registry,
        )
        self.app_sync_duration = Histogram(
            "gitops_agent_app_sync_duration_seconds", "Time one sync operation took, health waits included.",
            ["name"], registry=self.registry, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.out_of_sync_since = Gauge(
            "gitops_agent_app_out_of_sync_since_timestamp_seconds",
            "Unix time since when the application has been OutOfSync or Unknown; 0 while Synced.",
            ["name"], registry=self.registry,
        )
        self.app_health_status = Gauge(
            "gitops_agent_app_health_status",
            "Health of an application: 1 for its current health status, 0 for the others.",
            ["name", "health_status"], registry=self.registry,
        )
        self.git_requests = Counter(
            "gitops_agent_git_request_total", "Git network requests by repository (redacted URL) and outcome.",
            ["repo", "request", "result"], registry=self.registry,
        )
        self.git_fetch_duration = Histogram(
            "gitops_agent_git_fetch_duration_seconds", "Time one git fetch into the repository cache took.",
            ["repo"], registry=self.registry, buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
        )
        self.webhook_requests = Counter(
            "gitops_agent_webhook_requests_total", "Webhook deliveries by provider and outcome.",
            ["provider", "result"], registry=self.registry,
        )
        self.renders = Counter(
            "gitops_agent_render_total", "Renders by application and outcome (cache_hit, rendered, failed).",
            ["name", "result"], registry=self.registry,
        )
        self.render_duration = Histogram(
            "gitops_agent_render_duration_seconds", "Time one render took (cache hits included).",
            ["name"], registry=self.registry, buckets=(0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
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
            "gitops_agent_state_write_duration_seconds", "Time one state snapshot write took (encode, write, fsync).",
            registry=self.registry, buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        self.state_bytes = Gauge(
            "gitops_agent_state_bytes", "Size of the last state snapshot written.", registry=self.registry,
        )
        self.state_last_write = Gauge(
            "gitops_agent_state_last_write_timestamp_seconds", "Unix time of the last successful snapshot write.",
            registry=self.registry,
        )
        self.config_reloads = Counter(
            "gitops_agent_config_reload_total", "Configuration reloads (SIGHUP) by result (success, error).",
            ["result"], registry=self.registry,
        )
        self._info_labels: dict[str, tuple[str, ...]] = {}
        self._out_of_sync_since: dict[str, float] = {}

    def observe_status(self, status: AppStatus, *, dest_namespace: str) -> None:
        """Replace the app's info series so exactly one carries its current status."""
        labels = (
            status.name, dest_namespace, status.sync_status.value, status.health_status.value,
            status.revision.sha if status.revision else "",
        )
        self._observe_out_of_sync(status)
        self._observe_health(status)
        previous = self._info_labels.get(status.name)
        if previous == labels:
            return
        if previous is not None:
            self.app_info.remove(*previous)
        self.app_info.labels(*labels).set(1)
        self._info_labels[status.name] = labels

    def _observe_out_of_sync(self, status: AppStatus) -> None:
        if status.sync_status is SyncStatus.SYNCED:
            self._out_of_sync_since.pop(status.name, None)
            since = 0.0
        else:  # the first moment it left Synced, kept until it is Synced again
            since = self._out_of_sync_since.setdefault(status.name, status.reconciled_at or time.time())
        self.out_of_sync_since.labels(status.name).set(since)

    def _observe_health(self, status: AppStatus) -> None:
        # One series per status, so `== 1` selects and `changes()` counts transitions.
        for health in HealthStatus:
            self.app_health_status.labels(status.name, health.value).set(int(health is status.health_status))

    def observe_sync(self, name: str, phase: OperationPhase, seconds: float) -> None:
        self.app_sync_total.labels(name, phase.value).inc()
        self.app_sync_duration.labels(name).observe(seconds)

    def forget_app(self, name: str) -> None:
        """Remove every series of an app that left the configuration."""
        previous = self._info_labels.pop(name, None)
        if previous is not None:
            self.app_info.remove(*previous)
        self._out_of_sync_since.pop(name, None)
        per_app: list[tuple[Any, tuple[str, ...]]] = [
            (self.out_of_sync_since, ()), (self.reconcile_duration, ()), (self.app_sync_duration, ()),
            (self.render_duration, ()),
            *((self.app_health_status, (health.value,)) for health in HealthStatus),
            *((self.reconcile_total, (result,)) for result in ("compared", "synced", "error")),
            *((self.app_sync_total, (phase.value,)) for phase in OperationPhase),
            *((self.renders, (result,)) for result in ("cache_hit", "rendered", "failed")),
        ]
        for metric, rest in per_app:
            with contextlib.suppress(KeyError):  # a series the app never had
                metric.remove(name, *rest)

    def observe_kube_request(self, verb: str, kind: str, code: int) -> None:
        self.kube_requests.labels(verb, kind or "", str(code)).inc()

    def observe_git_request(self, repo: str, request: str, result: str) -> None:
        """`repo` must already be redacted (agent.source.redact_url)."""
        self.git_requests.labels(repo, request, result).inc()

    def observe_git_fetch(self, repo: str, seconds: float) -> None:
        self.git_fetch_duration.labels(repo).observe(seconds)

    def observe_webhook(self, provider: str, result: str) -> None:
        self.webhook_requests.labels(provider, result).inc()

    def observe_render(self, app: str, result: str, seconds: float) -> None:
        self.renders.labels(app, result).inc()
        self.render_duration.labels(app).observe(seconds)

    def observe_state_load(self, result: str) -> None:
        self.state_loads.labels(result).inc()

    def observe_state_write(self, *, ok: bool, seconds: float, size: int) -> None:
        self.state_writes.labels("succeeded" if ok else "failed").inc()
        self.state_write_duration.observe(seconds)
        if ok:
            self.state_bytes.set(size)
            self.state_last_write.set(time.time())

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
