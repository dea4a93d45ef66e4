"""Cold sync: N apps x 4 objects from one repository, from agent start to every app Synced.

In the same run, into fresh namespaces of their own: the baseline of today's manual process
(`kubectl apply --server-side -f apps/app-NNNN` once per app, one after another) and the raw
bound (the same server-side-apply PATCHes for all Nx4 objects from one aiohttp session, at
--concurrency requests in flight, no reads, no diff). The agent is stopped before the
baseline and the raw bound run, so they do not compete for the CPU.

Targets (issues 9 and 23), with the default settings and the process start-up included:
within 1.5x of the raw bound at 200 apps, 1.2x at 1,000 and 1.3x at 10,000 (the kubectl
loop is shown beside it: the raw bound itself is only ~8x the loop on two cores); RSS under
150 MiB at 1,000 apps and 400 MiB at 10,000.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from dataclasses import dataclass, field

from bench.agents import poll_every, synced_at, synced_healthy_at, wait_apps
from bench.apps import MAX_APPS
from bench.baselines import run_kubectl, run_raw
from bench.console import say
from bench.report import Report, by_verb, mib, seconds
from bench.run import Bench, main, parser
from tests.support.agent import AgentProcess


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
    rate_limit: float = 0.0  # gitops_agent_kube_rate_limit of the home cluster when all were Synced
    state_writes: tuple[int, int, float] = (0, 0, 0.0)  # (writes, of them over 1 s, seconds in all)


async def run_agent(bench: Bench, args: argparse.Namespace, sha: str) -> AgentRun:
    namespace = await bench.namespace("agent")
    apps = bench.apps(args.apps, namespace)
    names = [app.name for app in apps]
    say(f"agent: {args.apps} apps into {namespace}")
    agent = await bench.start_agent(apps, poll_interval="1h")
    result = AgentRun()
    result.up = await agent.wait_up() - agent.started
    budget, every = args.timeout, poll_every(args.apps, args.poll)
    result.synced = await wait_apps(agent, names, synced_at(sha), within=budget, what="every app Synced",
                                    interval=every) - agent.started
    result.cpu_seconds = agent.stats().cpu_seconds  # before the scrapes below, which cost CPU too
    result.requests = await agent.kube_requests()
    result.detail = await agent.kube_requests("verb", "resource_kind", "code")
    result.rate_limit = await agent.metric("gitops_agent_kube_rate_limit", cluster="in-cluster")
    result.healthy = await wait_apps(agent, names, synced_healthy_at(sha), within=budget,
                                     what="every app Synced and Healthy", interval=every) - agent.started
    stats = agent.stats()
    result.peak_rss_kib, result.rss_kib = stats.peak_rss_kib, stats.rss_kib
    result.state_writes = await state_writes(agent)
    result.errors = agent.logged_errors()
    await agent.stop()
    return result


async def state_writes(agent: AgentProcess) -> tuple[int, int, float]:
    """(writes, of them over 1 s, their seconds in all) from gitops_agent_state_write_duration_seconds."""
    buckets = {labels["le"]: value for labels, value in
               await agent.samples("gitops_agent_state_write_duration_seconds_bucket")}
    count = int(buckets.get("+Inf", 0))
    total = await agent.metric("gitops_agent_state_write_duration_seconds_sum")
    return count, count - int(buckets.get("1.0", count)), total


def report(args: argparse.Namespace, agent: AgentRun, kubectl: float | None, raw: float | None) -> Report:
    out = Report(f"Cold sync of {args.apps} apps x 4 objects", f"cold_sync --apps {args.apps}")
    total = sum(agent.requests.values())
    out.add("agent: start → all Synced", seconds(agent.synced))
    out.add("agent: apps/s", f"{args.apps / agent.synced:.1f}", "Flux: ~3.9")
    out.add("agent: start → all Synced+Healthy", seconds(agent.healthy))
    out.add("agent: start → /healthz answers", seconds(agent.up))
    out.add("agent: peak RSS (VmHWM)", mib(agent.peak_rss_kib), "< 400 MiB" if args.apps > 1000 else "< 150 MiB")
    out.add("agent: RSS when all Healthy", mib(agent.rss_kib))
    out.add("agent: CPU until all Synced", f"{agent.cpu_seconds:.2f} s ({agent.cpu_seconds / args.apps * 1000:.1f} "
            "ms/app)")
    out.add("agent: API requests until all Synced", f"{total} ({total / args.apps:.1f}/app)")
    out.add("agent: API requests by verb", by_verb(agent.requests))
    throttled = sum(n for key, n in agent.detail.items() if key.endswith(" 429"))
    out.add("agent: answers 429 (API Priority and Fairness)", str(throttled))
    out.add("agent: request rate limit when all Synced", f"{agent.rate_limit:.0f}/s")
    writes, slow, spent = agent.state_writes
    out.add("agent: state writes until all Healthy", f"{writes}, {spent:.2f} s in all, {slow} over 1 s")
    out.add("agent: errors logged", str(len(agent.errors)))
    if kubectl is not None:
        out.add("kubectl apply --server-side per app", f"{seconds(kubectl)} ({args.apps / kubectl:.1f} apps/s)")
        out.add("speed-up agent vs kubectl", f"{kubectl / agent.synced:.1f}x", "≥ 10x")
    if raw is not None:
        out.add(f"raw SSA PATCHes, concurrency {args.concurrency}",
                f"{seconds(raw)} ({args.apps * 4 / raw:.0f} objects/s)")
        beside = f"; kubectl / raw {kubectl / raw:.1f}x" if kubectl is not None else ""
        out.add("agent / raw", f"{agent.synced / raw:.2f}x{beside}", _raw_target(args.apps))
    out.notes.append(f"agent API requests until all Synced by verb, kind and code: {by_verb(agent.detail, limit=20)}")
    if agent.errors:
        out.notes.append(f"first error logged by the agent: {agent.errors[0]}")
    out.notes.append(f"agent [agent] overrides: {', '.join(args.agent_set) or 'none (defaults)'}")
    return out


def _raw_target(apps: int) -> str:
    """Issue 23's targets with default settings, start-up included."""
    return "≤ 1.5x" if apps < 1000 else "≤ 1.2x" if apps < 10000 else "≤ 1.3x"


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
    p.add_argument("--poll", type=float, default=None, metavar="SECONDS",
                   help="how often to read /api/v1/applications while waiting (default: 0.25, or apps/2000 "
                        "when longer)")
    p.add_argument("--skip-kubectl", action="store_true", help="leave out the kubectl baseline")
    p.add_argument("--skip-raw", action="store_true", help="leave out the raw bound")
    args = p.parse_args(argv)
    if not 1 <= args.apps <= MAX_APPS or args.concurrency < 1:
        p.error(f"--apps must be 1..{MAX_APPS} and --concurrency at least 1")
    return args


if __name__ == "__main__":
    sys.exit(main("cold_sync", measure, parse(sys.argv[1:])))
