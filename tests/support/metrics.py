"""Prometheus samples, read the same way from an agent's /metrics page and from an in-process registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families


def samples(source: str | CollectorRegistry, sample_name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `sample_name`, e.g. `gitops_agent_reconcile_total`."""
    families = text_string_to_metric_families(source) if isinstance(source, str) else source.collect()
    return [(sample.labels, sample.value) for family in families for sample in family.samples
            if sample.name == sample_name]


def sample_total(source: str | CollectorRegistry, sample_name: str, **labels: str) -> float:
    """The sum of the samples called `sample_name` whose labels include `labels`."""
    return sum(value for found, value in samples(source, sample_name)
               if all(found.get(key) == wanted for key, wanted in labels.items()))
