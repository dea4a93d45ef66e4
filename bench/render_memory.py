"""Peak memory of renders at the edge of their budget, each case in a fresh Python process.

    python -m bench.render_memory [--kustomize PATH] [--concurrent 4]

For every case, `--concurrent` renders of the same shape run at once (as
`max_concurrent_renders` allows) in a child process; the child reports its peak resident
set (ru_maxrss) above what it held before rendering, and the peak of kustomize processes.
The shapes sit just inside the default budget (RenderLimits): one document of tiny
scalars (the most nodes per byte), files of long scalars (the most bytes per node),
the same through kustomize, and a 4 MiB document of two million nodes, which is refused.
No cluster and no git server: the files come from memory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.config import AppSpec, RenderSettings
from agent.errors import RenderError
from agent.model import Revision
from agent.render import Renderer, RenderLimits

LIMITS = RenderLimits()
CASES = ("nodes", "bytes", "kustomize-nodes", "kustomize-bytes", "hostile-4mib")


def files_for(case: str) -> dict[str, bytes]:
    """The app's directory for one case."""
    head = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\n"
    if case in ("nodes", "kustomize-nodes"):
        count = LIMITS.max_render_nodes - 100  # what kustomize is handed has a node budget of its own
        body = (head % "nodes") + "data:\n" + "".join(f"  k{i}: v\n" for i in range(count // 2))
        files = {"cm.yaml": body.encode()}
    elif case in ("bytes", "kustomize-bytes"):
        share = LIMITS.max_render_bytes // (2 if case.startswith("kustomize") else 1) // 8 - 4096  # in, out
        files = {f"cm{i}.yaml": ((head % f"blob{i}") + "data:\n  blob: " + "x" * share + "\n").encode()
                 for i in range(8)}
    else:
        files = {"cm.yaml": ((head % "hostile") + "x: [" + ",".join(["1"] * (2 * 1024 * 1024 - 64)) + "]\n").encode()}
        # the 4 MiB file a repository may hold (max_file_size): two million nodes
    if case.startswith("kustomize"):
        files["kustomization.yaml"] = ("resources: [" + ", ".join(sorted(files)) + "]\n").encode()
    return files


@dataclass(frozen=True)
class _Entry:
    sha: str
    is_dir: bool


@dataclass(frozen=True)
class _Files:
    files: Mapping[str, bytes]


class MemorySource:
    """One directory `app` at one revision, from memory."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files

    async def export(self, url: str, revision: Revision, path: str, *, max_bytes: int | None = None) -> _Files:
        return _Files(dict(self.files))

    async def tree_ids(self, url: str, revision: Revision, paths: Sequence[str]) -> dict[str, _Entry | None]:
        return {path: _Entry("0" * 40, True) for path in paths}

    async def symlink_targets(self, url: str, revision: Revision, paths: Sequence[str]) -> tuple[str, ...]:
        return ()


async def _render_all(case: str, kustomize: str, concurrent: int) -> list[str]:
    settings = RenderSettings(kustomize_path=kustomize, max_concurrent_renders=concurrent)
    results = []
    for index in range(concurrent):  # a renderer each: the render cache must not answer for the others
        renderer = Renderer(settings, MemorySource(files_for(case)))
        app = AppSpec(name=f"{case}-{index}", repo="memory", revision="main", path="app")
        results.append(renderer.render(app, Revision(sha=f"{index:040d}")))
    outcomes = []
    for outcome in await asyncio.gather(*results, return_exceptions=True):
        if isinstance(outcome, RenderError):
            outcomes.append(f"refused: {outcome.message[:120]}")
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            outcomes.append(f"{len(outcome)} objects")
    return outcomes


def child(case: str, kustomize: str, concurrent: int) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcomes = asyncio.run(_render_all(case, kustomize, concurrent))
    print(json.dumps({
        "case": case, "outcomes": sorted(set(outcomes)), "before_mib": round(before / 1024, 1),
        "peak_above_mib": round((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, 1),
        "kustomize_peak_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
    }))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kustomize", default=shutil.which("kustomize") or "")
    parser.add_argument("--concurrent", type=int, default=4)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # the child process's own case
    args = parser.parse_args()
    if args.case:
        child(args.case, args.kustomize, args.concurrent)
        return 0
    print(f"budget per render: {LIMITS.max_render_bytes} bytes, {LIMITS.max_render_nodes} nodes; "
          f"{args.concurrent} renders at once")
    for case in CASES:
        done = subprocess.run([sys.executable, "-m", "bench.render_memory", "--case", case, "--kustomize",
                               args.kustomize, "--concurrent", str(args.concurrent)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"{case}: failed: {done.stderr.strip()[-2000:]}")
            return 1
        print(done.stdout.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
