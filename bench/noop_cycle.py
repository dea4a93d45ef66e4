"""No-op cycle: with every app Synced and nothing changed, one full reconcile cycle of all apps.

The agent syncs N apps (4 objects each) and is left until its Kubernetes request count is
quiet. Then one cycle is triggered and the benchmark waits until every app's
`reconciled_at` is past the trigger time:

  --trigger refresh  POST /api/v1/applications/{name}/refresh for every app (the default;
                     each refresh also drops the shared ls-remote answer, see docs/git.md)
  --trigger poll     the agent runs with --poll-interval and the next poll of every app is
                     the cycle (no HTTP trigger; idle time until the polls is included)

Measured over the cycle: Kubernetes API requests (delta of gitops_agent_kube_requests_total;
target 0), agent CPU seconds (utime+stime from /proc; target < 1 ms per app), git requests at
the server, reconciles and renders by result. The CPU figure includes serving the trigger
requests and the benchmark's reads of /api/v1/applications (every --poll seconds); the idle
CPU rate measured with the same reads just before the cycle is shown for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass

from bench.agents import poll_every, synced_healthy_at, wait_apps, wait_quiet
from bench.apps import MAX_APPS
from bench.console import BenchError, say
from bench.report import Report, by_verb, delta, mib, seconds
from bench.run import Bench, main, parser
from tests.support.agent import AgentProcess
from tests.support.gitserver import GitServer


@dataclass
class Snapshot:
    requests: Counter[str]
    detail: Counter[str]  # by verb, kind and code
    reconciles: Counter[str]
    renders: Counter[str]
    git: Counter[str]


async def snapshot(agent: AgentProcess, git: GitServer) -> Snapshot:
    """The agent's counters (each read is a scrape of /metrics, so CPU is read around a snapshot, not in it)."""
    return Snapshot(
        requests=await agent.kube_requests(),
        detail=await agent.kube_requests("verb", "resource_kind", "code"),
        reconciles=await agent.totals("gitops_agent_reconcile_total", "result"),
        renders=await agent.totals("gitops_agent_render_total", "result"),
        git=Counter({kind: git.count(repo="bench", kind=kind) for kind in ("ls-refs", "fetch")}),
    )


async def idle_cpu_rate(agent: AgentProcess, names: list[str], args: argparse.Namespace) -> float:
    """Agent CPU seconds per second while only the benchmark reads /api/v1/applications, as during the wait."""
    before, started = agent.stats().cpu_seconds, time.monotonic()
    while time.monotonic() - started < args.idle_window:
        await agent.applications()
        await asyncio.sleep(poll_every(args.apps, args.poll, least=0.5))
    return (agent.stats().cpu_seconds - before) / (time.monotonic() - started)


async def trigger_refresh(agent: AgentProcess, names: list[str], concurrency: int = 8) -> None:
    queue = list(reversed(names))

    async def worker() -> None:
        while queue:
            name = queue.pop()
            status, text = await agent.request("POST", f"/api/v1/applications/{name}/refresh")
            if status != 202:
                raise BenchError(f"POST /api/v1/applications/{name}/refresh: HTTP {status}: {text[:200]}")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def cycle(agent: AgentProcess, names: list[str], args: argparse.Namespace) -> float:
    """Trigger the cycle; return the wall-clock time (time.time()) it was triggered at, once every app passed it."""
    triggered = time.time()
    if args.trigger == "refresh":
        await trigger_refresh(agent, names)
    else:
        # Without jitter every app's next poll is due within one interval of the trigger. Reading the
        # list meanwhile would measure the benchmark: each read encodes again every app whose poll
        # moved its reconciled_at (at 10,000 apps, ~0.1 s a read, most of the cycle's CPU).
        await asyncio.sleep(args.poll_seconds)
    budget = args.poll_seconds * 2 + 60 + len(names) * 0.5
    await wait_apps(agent, names, lambda app: (app.get("reconciled_at") or 0) > triggered, within=budget,
                    what="every app reconciled after the trigger",
                    interval=poll_every(len(names), args.poll, least=0.5))
    return triggered


@dataclass
class Cycle:
    cpu: float  # agent CPU seconds from the trigger until every app was reconciled
    wall: float
    idle_rate: float  # agent CPU seconds per second with only the benchmark's reads, before the cycle
    peak_rss_kib: int  # the agent's high-water mark (the cold sync before the cycle included)
    rss_kib: int  # after the cycle


def report(args: argparse.Namespace, before: Snapshot, after: Snapshot, measured: Cycle, quiet: bool) -> Report:
    out = Report(f"No-op reconcile cycle of {args.apps} Synced apps (trigger: {args.trigger}, "
                 f"{args.warmup} warm-up cycles)",
                 f"noop_cycle --apps {args.apps}")
    requests = delta(after.requests, before.requests)
    cpu, wall, idle_rate = measured.cpu, measured.wall, measured.idle_rate
    git = delta(after.git, before.git)
    ls_remotes = git["ls-refs"] - git["fetch"]
    out.add("cycle wall time (trigger → all reconciled)", seconds(wall))
    out.add("API requests during the cycle", str(sum(requests.values())), "0")
    out.add("API requests by verb", by_verb(requests))
    out.add("agent CPU during the cycle", f"{cpu:.3f} s")
    out.add("agent CPU per app", f"{cpu / args.apps * 1000:.2f} ms", "< 1 ms")
    out.add("agent CPU per app, less the idle rate", f"{max(cpu - idle_rate * wall, 0) / args.apps * 1000:.3f} ms",
            "< 0.2 ms at 10,000")
    out.add("idle CPU with the same API reads", f"{idle_rate * wall:.3f} s over {seconds(wall)} "
            f"({idle_rate * 1000:.1f} ms/s)")
    out.add("reconciles by result", by_verb(delta(after.reconciles, before.reconciles)))
    out.add("renders by result", by_verb(delta(after.renders, before.renders)))
    out.add("git requests at the server", f"{ls_remotes} ls-remote, {git['fetch']} fetch")
    out.add("agent peak RSS (VmHWM), the sync before included", mib(measured.peak_rss_kib), "< 400 MiB")
    out.add("agent RSS after the cycle", mib(measured.rss_kib))
    if sum(requests.values()):
        out.notes.append(f"API requests by verb, kind and code: {by_verb(delta(after.detail, before.detail))}")
    if not quiet:
        out.notes.append("the agent's request count never stayed still for --settle seconds before the cycle")
    out.notes.append(f"agent [agent] overrides: {', '.join(args.agent_set) or 'none (defaults)'}")
    return out


async def measure(bench: Bench, args: argparse.Namespace) -> Report:
    assert bench.git is not None
    say(f"committing {args.apps} apps x 4 objects")
    sha = await bench.commit_apps(args.apps)
    namespace = await bench.namespace("agent")
    apps = bench.apps(args.apps, namespace)
    names = [app.name for app in apps]
    interval = f"{args.poll_seconds:g}s" if args.trigger == "poll" else "1h"
    agent = await bench.start_agent(apps, poll_interval=interval)
    say(f"waiting for {args.apps} apps Synced and Healthy in {namespace}")
    await wait_apps(agent, names, synced_healthy_at(sha), within=args.timeout, what="every app Synced and Healthy",
                    interval=poll_every(args.apps, args.poll, least=0.5))
    quiet = await wait_quiet(agent, quiet=args.settle, within=args.settle * 5 + 30)
    for number in range(1, args.warmup + 1):
        say(f"warm-up cycle {number}/{args.warmup}")
        await cycle(agent, names, args)
        await wait_quiet(agent, quiet=args.settle, within=args.settle * 5 + 30)
    idle_rate = await idle_cpu_rate(agent, names, args)
    say(f"one cycle (trigger: {args.trigger})")
    before = await snapshot(agent, bench.git)
    cpu, started = agent.stats().cpu_seconds, time.monotonic()
    await cycle(agent, names, args)
    stats = agent.stats()
    cpu, wall = stats.cpu_seconds - cpu, time.monotonic() - started
    after = await snapshot(agent, bench.git)
    return report(args, before, after, Cycle(cpu, wall, idle_rate, stats.peak_rss_kib, stats.rss_kib), quiet)


def parse(argv: list[str]) -> argparse.Namespace:
    p = parser("noop_cycle", __doc__ or "", timeout=1800)
    p.add_argument("--apps", type=int, default=1000, help="number of apps, 4 objects each (default: %(default)s)")
    p.add_argument("--trigger", choices=("refresh", "poll"), default="refresh",
                   help="how the cycle is started (default: %(default)s)")
    p.add_argument("--poll-interval", dest="poll_seconds", type=float, default=30.0, metavar="SECONDS",
                   help="the agent's poll_interval with --trigger poll (default: %(default)s)")
    p.add_argument("--settle", type=float, default=3.0, metavar="SECONDS",
                   help="before the cycle, wait until the agent made no API request for this long (default: 3)")
    p.add_argument("--warmup", type=int, default=0, metavar="CYCLES",
                   help="untimed cycles before the measured one (default: %(default)s: the first cycle after the sync)")
    p.add_argument("--idle-window", type=float, default=3.0, metavar="SECONDS",
                   help="how long to measure the idle CPU rate before the cycle (default: %(default)s)")
    p.add_argument("--poll", type=float, default=None, metavar="SECONDS",
                   help="how often to read /api/v1/applications while waiting (default: 0.5, or apps/2000 "
                        "when longer)")
    args = p.parse_args(argv)
    if not 1 <= args.apps <= MAX_APPS:
        p.error(f"--apps must be 1..{MAX_APPS}")
    return args


if __name__ == "__main__":
    sys.exit(main("noop_cycle", measure, parse(sys.argv[1:])))
