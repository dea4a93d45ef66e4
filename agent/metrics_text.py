"""The Prometheus text format, written piece by piece for the per-app families.

At ten thousand apps a scrape is tens of megabytes of text; made whole (and then encoded and
compressed whole) it held several times that in memory for a moment, and the event loop for
a second. The per-app families (agent.metrics, agent.metrics_argocd) are written `BATCH` apps
at a time instead, and sent as they are made (agent.server.app).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from prometheus_client.utils import floatToGoString

T = TypeVar("T")

BATCH = 500  # apps' series per piece: tens of kilobytes


def quote(value: str) -> str:
    """A label value as the text format writes it."""
    return '"' + value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"") + '"'


def number(value: float) -> str:
    """A sample's value as prometheus_client writes it (`1.0`, `+Inf`)."""
    return str(floatToGoString(value))  # type: ignore[no-untyped-call]  # untyped in the library


def header(name: str, kind: str, help_text: str) -> str:
    return f"# HELP {name} {help_text}\n# TYPE {name} {kind}\n"


def batched(items: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
