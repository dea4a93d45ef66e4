"""Prometheus samples, read the same way from an agent's /metrics page and from an in-process Metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import Metrics

Source = str | Metrics  # a scrape's text, or an in-process Metrics (its registry lacks the per-app series)


def samples(source: Source, sample_name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called `sample_name`, e.g. `gitops_agent_reconcile_total`, in a
    scrape's text or in what an in-process Metrics would answer a scrape with."""
    text = source if isinstance(source, str) else source.exposition().decode()
    return [(sample.labels, sample.value) for family in text_string_to_metric_families(text)
            for sample in family.samples if sample.name == sample_name]


def sample_value(source: Source, sample_name: str, **labels: str) -> float | None:
    """The value of the one sample with exactly these labels; None when there is none."""
    return next((value for found, value in samples(source, sample_name) if found == labels), None)


def sample_total(source: Source, sample_name: str, **labels: str) -> float:
    """The sum of the samples called `sample_name` whose labels include `labels`."""
    return sum(value for found, value in samples(source, sample_name)
               if all(found.get(key) == wanted for key, wanted in labels.items()))
