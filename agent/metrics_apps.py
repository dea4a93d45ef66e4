"""Our own per-app family, `gitops_agent_*`: plain values per app, written as text when scraped.

prometheus_client keeps a child object, a lock and a value cell per labelled series, and
builds a sample object per series at every scrape; at ten thousand apps (120,000 series) a
scrape made that way held about a hundred megabytes for a moment. Here each app's lines are
written as they are sent, `BATCH` apps at a time (agent.metrics_argocd does the same for Argo
CD's family; agent.metrics registers neither with prometheus_client).
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator

from agent.metrics_text import batched, header, number, quote
from agent.model import HealthStatus


class AppSeries:
    """Every per-app series of the family. Everything here runs on the event loop."""

    def __init__(self) -> None:
        self.info: dict[str, tuple[str, ...]] = {}  # name → (dest_namespace, sync, health, revision, dest_server)
        self.out_of_sync_since: dict[str, float] = {}  # 0 while Synced
        self.health: dict[str, HealthStatus] = {}
        self.reconciles: Tally[tuple[str, str]] = Tally()  # (name, result)
        self.syncs: Tally[tuple[str, str]] = Tally()  # (name, phase)
        self.renders: Tally[tuple[str, str]] = Tally()  # (name, result)

    def forget(self, name: str) -> None:
        for values in (self.info, self.out_of_sync_since, self.health):
            values.pop(name, None)
        for tally in (self.reconciles, self.syncs, self.renders):
            for key in [key for key in tally if key[0] == name]:
                del tally[key]

    def pieces(self) -> Iterator[str]:
        """The families in the text format, labels in the order prometheus_client writes them. Each
        piece is made at once from copies taken before the first: between pieces the caller awaits,
        and reconciles change the values meanwhile."""
        info, since, health = list(self.info.items()), list(self.out_of_sync_since.items()), list(self.health.items())
        reconciles, syncs, renders = list(self.reconciles.items()), list(self.syncs.items()), list(self.renders.items())
        yield header("gitops_agent_app_info", "gauge", "Information about an application; the value is always 1.")
        for infos in batched(info):
            yield "".join(f"gitops_agent_app_info{{dest_namespace={quote(namespace)},dest_server={quote(server)},"
                          f"health_status={quote(health_status)},name={quote(name)},revision={quote(revision)},"
                          f"sync_status={quote(sync)}}} 1.0\n"
                          for name, (namespace, sync, health_status, revision, server) in infos)
        yield from _counted("gitops_agent_reconcile_total", "Reconciles by application and outcome.", "result",
                            reconciles)
        yield from _counted("gitops_agent_app_sync_total", "Sync operations by application and phase.", "phase",
                            syncs)
        yield header("gitops_agent_app_out_of_sync_since_timestamp_seconds", "gauge",
                     "Unix time since when the application has been OutOfSync or Unknown; 0 while Synced.")
        for times in batched(since):
            yield "".join(f"gitops_agent_app_out_of_sync_since_timestamp_seconds{{name={quote(name)}}} "
                          f"{number(value)}\n" for name, value in times)
        # One series per status: `== 1` selects, `changes()` counts transitions.
        yield header("gitops_agent_app_health_status", "gauge",
                     "Health of an application: 1 for its current health status, 0 for the others.")
        for healths in batched(health):
            yield "".join(f"gitops_agent_app_health_status{{health_status={quote(status.value)},name={quote(name)}}} "
                          f"{'1.0' if status is current else '0.0'}\n"
                          for name, current in healths for status in HealthStatus)
        yield from _counted("gitops_agent_render_total",
                            "Renders by application and outcome (cache_hit, rendered, failed).", "result", renders)


def _counted(name: str, help_text: str, label: str, counts: list[tuple[tuple[str, str], int]]) -> Iterator[str]:
    """A counter family by app and one more label, from (app, value) → count."""
    yield header(name, "counter", help_text)
    for batch in batched(counts):  # `label` sorts after `name`, as prometheus_client writes labels
        yield "".join(f"{name}{{name={quote(app)},{label}={quote(value)}}} {number(count)}\n"
                      for (app, value), count in batch)
