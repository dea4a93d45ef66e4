"""Numbers into words: units, percentiles, the table a benchmark prints, and its section of RESULTS.md."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.support.cluster import REPO_ROOT

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), interpolated between the two closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def by_verb(counts: Mapping[str, int], *, limit: int = 12) -> str:
    """`patch 40, get 10` (largest first, at most `limit` entries and a sum of the rest) or `none`."""
    items = sorted(((v, n) for v, n in counts.items() if n), key=lambda item: -item[1])
    text = ", ".join(f"{verb} {n}" for verb, n in items[:limit])
    if len(items) > limit:
        text += f", {len(items) - limit} more: {sum(n for _, n in items[limit:])}"
    return text or "none"


def delta(after: Mapping[str, int], before: Mapping[str, int]) -> Counter[str]:
    return Counter({key: after.get(key, 0) - before.get(key, 0) for key in set(after) | set(before)})


@dataclass
class Report:
    """Rows of (metric, value, target), printed as a table and optionally recorded in RESULTS.md."""

    title: str
    key: str  # the RESULTS.md section, e.g. "cold_sync --apps 100"
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, value: str, target: str = "") -> None:
        self.rows.append((metric, value, target))

    def text(self) -> str:
        header = ("metric", "value", "target")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(3)]
        lines = [self.title, *("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                               for row in [header, tuple("-" * w for w in widths), *self.rows])]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])

    def markdown(self, command: str) -> str:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"## {self.key}", "", f"{self.title}. Recorded {when} on {machine()['cores']} cores; rerun with:",
                 "", "```sh", command, "```", "", "| metric | value | target |", "|---|---|---|"]
        lines += [f"| {m} | {v} | {t} |" for m, v, t in self.rows]
        lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def machine() -> dict[str, str]:
    """Cores (`nproc`), Python, and the cluster versions pinned in scripts/local-cluster."""
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip() or "?"
    script = (REPO_ROOT / "scripts" / "local-cluster").read_text()
    versions = dict(re.findall(r'^(K8S|ETCD|KWOK|KUSTOMIZE)_VERSION = "([^"]+)"', script, re.M))
    return {"cores": cores, "python": sys.version.split()[0], "kubernetes": versions.get("K8S", "?"),
            "etcd": versions.get("ETCD", "?"), "kwok": versions.get("KWOK", "?"),
            "kustomize": versions.get("KUSTOMIZE", "?")}


_FAST_KUBE = "--agent-set kube_qps=500 --agent-set kube_burst=1000"  # else the token bucket is the bound
FULL_RUN = (  # the benchmarks at full size, as the header of RESULTS.md lists them
    f"python -m bench.cold_sync --apps 100 {_FAST_KUBE} --record",
    f"python -m bench.cold_sync --apps 500 {_FAST_KUBE} --record",
    f"python -m bench.cold_sync --apps 1000 {_FAST_KUBE} --record",
    f"python -m bench.noop_cycle --apps 1000 --trigger poll --poll 5 {_FAST_KUBE} --record",
    "python -m bench.drift --samples 20 --record",
    "python -m bench.push_to_applied --samples 20 --record",
    "python -m bench.git_requests --apps 100 --interval 2s --seconds 10 --record",
)


def results_header(date: str = "") -> str:
    """The head of RESULTS.md: machine, versions, date of the latest recording, the commands of a full run."""
    info = machine()
    when = date or datetime.now(UTC).strftime("%Y-%m-%d")
    commands = "\n".join(FULL_RUN)
    return (
        "# Benchmark results\n\n"
        "Numbers from `python -m bench.<name> ... --record` (see [README.md](README.md)), run from the\n"
        "repository root against the local cluster; each section names the command that produced it.\n"
        "Machine and versions of the latest recording:\n\n"
        "| | |\n|---|---|\n"
        f"| cores (`nproc`) | {info['cores']} |\n| Python | {info['python']} |\n"
        f"| kube-apiserver, kubectl | {info['kubernetes']} |\n| etcd | {info['etcd']} |\n"
        f"| kwok | {info['kwok']} |\n| kustomize | {info['kustomize']} |\n| date | {when} |\n\n"
        f"A full run (one command after another, on a quiet machine):\n\n```sh\n{commands}\n```\n"
    )


_BEGIN, _END = "<!-- bench:begin {} -->", "<!-- bench:end {} -->"


def record(report: Report, command: str, path: Path = RESULTS) -> None:
    """Replace (or append) the report's section in RESULTS.md and refresh the header."""
    text = path.read_text() if path.exists() else ""
    marker = text.find("<!-- bench:begin ")
    body = text[marker:] if marker >= 0 else ""
    begin, end = _BEGIN.format(report.key), _END.format(report.key)
    section = f"{begin}\n{report.markdown(command)}{end}\n"
    if begin in body and end in body:
        start, stop = body.index(begin), body.index(end) + len(end) + 1
        body = body[:start] + section + body[stop:]
    else:
        body = (body.rstrip() + "\n\n" if body.strip() else "") + section
    path.write_text(results_header() + "\n" + body)
