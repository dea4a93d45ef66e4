"""Cold sync: N apps x 4 objects from one repository, from agent start to every app Synced.

In the same run, into fresh namespaces of their own: the baseline of today's manual process
(`kubectl apply --server-side -f apps/app-NNNN` once per app, one after another) and the raw
bound (the same server-side-apply PATCHes for all Nx4 objects from one aiohttp session, at
--concurrency requests in flight, no reads, no diff). The agent is stopped before the
baseline and the raw bound run, so they do not compete for the CPU.

Targets (issue 9): agent ≥ 10x faster than kubectl, within 1.5x of the raw bound; RSS
under 150 MiB at 1000 apps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.common import (
    FIELD_MANAGER,
    KIND_OF,
    Bench,
    BenchError,
    Report,
    app_dir,
    app_objects,
    by_verb,
    main,
    mib,
    parser,
    placed,
    say,
    seconds,
    synced_at,
    synced_healthy_at,
    wait_apps,
)


@dataclass
class AgentRun:
    up: float = 0.0  # spawn → /healthz
    synced: float = 0.0  # spawn → every app Synced at the commit
    healthy: float = 0.0  # spawn → every app Synced and Healthy
    peak_rss_kib: int = 0
    rss_kib: int = 0
    cpu_seconds: float = 0.0
    requests: Counter[str] = field(default_factory=Counter)
    detail: Counter[str] = field(default_factory=Counter)  # by verb, kind and code
    errors: list[str] = field(default_factory=list)


async def run_agent(bench: Bench, args: argparse.Namespace, sha: str) -> AgentRun:
    namespace = await bench.namespace("agent")
    apps = bench.apps(args.apps, namespace)
    names = [app.name for app in apps]
    say(f"agent: {args.apps} apps into {namespace}")
    agent = await bench.start_agent(apps, poll_interval="1h")
    result = AgentRun()
    result.up = await agent.wait_up() - agent.started
    budget = args.timeout
    result.synced = await wait_apps(agent, names, synced_at(sha), within=budget, what="every app Synced",
                                    interval=args.poll) - agent.started
    result.requests = await agent.kube_requests()
    result.detail = await agent.kube_requests("verb", "resource_kind", "code")
    result.cpu_seconds = agent.stats().cpu_seconds
    result.healthy = await wait_apps(agent, names, synced_healthy_at(sha), within=budget,
                                     what="every app Synced and Healthy", interval=args.poll) - agent.started
    stats = agent.stats()
    result.peak_rss_kib, result.rss_kib = stats.peak_rss_kib, stats.rss_kib
    result.errors = agent.logged_errors()
    await agent.stop()
    return result


async def run_kubectl(bench: Bench, args: argparse.Namespace) -> float:
    """Seconds for `kubectl apply --server-side -n NS -f apps/app-NNNN` for every app, one after another."""
    assert bench.cluster is not None
    namespace = await bench.namespace("kubectl")
    say(f"kubectl: {args.apps} x kubectl apply --server-side into {namespace}")
    kubectl = [str(bench.cluster.bin_dir / "kubectl"), "--kubeconfig", str(bench.cluster.kubeconfig),
               "--cache-dir", str(bench.tmp / "kubectl-cache")]
    started = time.monotonic()
    for index in range(1, args.apps + 1):
        path = bench.repo.workdir / "apps" / app_dir(index)
        proc = await asyncio.create_subprocess_exec(
            *kubectl, "apply", "--server-side", "-n", namespace, "-f", str(path),
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        _, stderr = await proc.communicate()
        if proc.returncode != 0:
            raise BenchError(f"kubectl apply -f {path} exited {proc.returncode}: {stderr.decode().strip()}")
    return time.monotonic() - started


async def run_raw(bench: Bench, args: argparse.Namespace) -> float:
    """Seconds to send every object's server-side-apply PATCH (as the agent sends it) at --concurrency."""
    namespace = await bench.namespace("raw")
    say(f"raw: {args.apps * 4} server-side-apply PATCHes at concurrency {args.concurrency} into {namespace}")
    bodies = [placed(obj, namespace, f"{bench.prefix}r-{index:04d}")
              for index in range(1, args.apps + 1) for obj in app_objects(index)]
    queue: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    kube = bench.k
    params = {"fieldManager": FIELD_MANAGER, "force": "true"}
    headers = {"Content-Type": "application/apply-patch+yaml", "Accept": "application/json"}

    async def worker() -> None:
        while not queue.empty():
            body = queue.get_nowait()
            meta = body["metadata"]
            assert isinstance(meta, dict)
            url = kube.server + KIND_OF[str(body["kind"])].path(meta["namespace"], meta["name"])
            async with kube.session.patch(url, data=json.dumps(body), params=params, headers=headers) as resp:
                text = await resp.read()
                if resp.status >= 300:
                    raise BenchError(f"raw PATCH {url}: HTTP {resp.status}: {text[:300]!r}")

    await kube.call("GET", "/version")  # open a connection first, as the agent has one before it applies
    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(args.concurrency)))
    return time.monotonic() - started


def report(args: argparse.Namespace, agent: AgentRun, kubectl: float | None, raw: float | None) -> Report:
    out = Report(f"Cold sync of {args.apps} apps x 4 objects", f"cold_sync --apps {args.apps}")
    total = sum(agent.requests.values())
    out.add("agent: start → all Synced", seconds(agent.synced))
    out.add("agent: apps/s", f"{args.apps / agent.synced:.1f}", "Flux: ~3.9")
    out.add("agent: start → all Synced+Healthy", seconds(agent.healthy))
    out.add("agent: start → /healthz answers", seconds(agent.up))
    out.add("agent: peak RSS (VmHWM)", mib(agent.peak_rss_kib), "< 150 MiB at 1000 apps")
    out.add("agent: RSS when all Healthy", mib(agent.rss_kib))
    out.add("agent: CPU until all Synced", f"{agent.cpu_seconds:.2f} s")
    out.add("agent: API requests until all Synced", f"{total} ({total / args.apps:.1f}/app)")
    out.add("agent: API requests by verb", by_verb(agent.requests))
    out.add("agent: errors logged", str(len(agent.errors)))
    if kubectl is not None:
        out.add("kubectl apply --server-side per app", f"{seconds(kubectl)} ({args.apps / kubectl:.1f} apps/s)")
        out.add("speed-up agent vs kubectl", f"{kubectl / agent.synced:.1f}x", "≥ 10x")
    if raw is not None:
        out.add(f"raw SSA PATCHes, concurrency {args.concurrency}",
                f"{seconds(raw)} ({args.apps * 4 / raw:.0f} objects/s)")
        out.add("agent / raw", f"{agent.synced / raw:.2f}x", "≤ 1.5x")
    out.notes.append(f"agent API requests until all Synced by verb, kind and code: {by_verb(agent.detail, limit=20)}")
    if agent.errors:
        out.notes.append(f"first error logged by the agent: {agent.errors[0]}")
    out.notes.append(f"agent [agent] overrides: {', '.join(args.agent_set) or 'none (defaults)'}")
    return out


async def measure(bench: Bench, args: argparse.Namespace) -> Report:
    say(f"committing {args.apps} apps x 4 objects")
    sha = await bench.commit_apps(args.apps)
    agent = await run_agent(bench, args, sha)
    kubectl = None if args.skip_kubectl else await run_kubectl(bench, args)
    raw = None if args.skip_raw else await run_raw(bench, args)
    return report(args, agent, kubectl, raw)


def parse(argv: list[str]) -> argparse.Namespace:
    p = parser("cold_sync", __doc__ or "", timeout=1800)
    p.add_argument("--apps", type=int, default=100, help="number of apps, 4 objects each (default: %(default)s)")
    p.add_argument("--concurrency", type=int, default=16,
                   help="PATCHes in flight for the raw bound (default: %(default)s)")
    p.add_argument("--poll", type=float, default=0.25, metavar="SECONDS",
                   help="how often to read /api/v1/applications while waiting (default: %(default)s)")
    p.add_argument("--skip-kubectl", action="store_true", help="leave out the kubectl baseline")
    p.add_argument("--skip-raw", action="store_true", help="leave out the raw bound")
    args = p.parse_args(argv)
    if args.apps < 1 or args.apps > 9999 or args.concurrency < 1:
        p.error("--apps must be 1..9999 and --concurrency at least 1")
    return args


if __name__ == "__main__":
    sys.exit(main("cold_sync", measure, parse(sys.argv[1:])))
