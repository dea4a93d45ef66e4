"""The agent's own Prometheus registry and metric definitions (no process-wide globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from agent.model import AppStatus

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
        self._info_labels: dict[str, tuple[str, ...]] = {}

    def observe_status(self, status: AppStatus, *, dest_namespace: str) -> None:
        """Replace the app's info series so exactly one carries its current status."""
        labels = (
            status.name, dest_namespace, status.sync_status.value, status.health_status.value,
            status.revision.sha if status.revision else "",
        )
        previous = self._info_labels.get(status.name)
        if previous == labels:
            return
        if previous is not None:
            self.app_info.remove(*previous)
        self.app_info.labels(*labels).set(1)
        self._info_labels[status.name] = labels

    def forget_app(self, name: str) -> None:
        previous = self._info_labels.pop(name, None)
        if previous is not None:
            self.app_info.remove(*previous)

    def observe_kube_request(self, verb: str, kind: str, code: int) -> None:
        self.kube_requests.labels(verb, kind or "", str(code)).inc()

    def exposition(self) -> bytes:
        return bytes(generate_latest(self.registry))
