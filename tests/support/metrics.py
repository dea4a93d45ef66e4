"""Prometheus samples, read the same way from an agent's /metrics page and from an in-process registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import Metrics

Source = str | Metrics | CollectorRegistry


def samples(source: Source, sample_name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `sample_name`, e.g. `gitops_agent_reconcile_total`, in a
    scrape's text, in what an in-process Metrics would answer a scrape with, or in a registry (which
    holds no per-app series: Metrics writes those as text only)."""
    text = source if isinstance(source, str) else source.exposition().decode() if isinstance(source, Metrics) \
        else generate_latest(source).decode()
    return [(sample.labels, sample.value) for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == sample_name]


def sample_value(source: Source, sample_name: str, **labels: str) -> float | None:
    """The value of the one sample with exactly these labels; None when there is none."""
    return next((value for found, value in samples(source, sample_name) if found == labels), None)


def sample_total(source: Source, sample_name: str, **labels: str) -> float:
    """The sum of the samples called `sample_name` whose labels include `labels`."""
    return sum(value for found, value in samples(source, sample_name)
               if all(found.get(key) == wanted for key, wanted in labels.items()))
