"""Several clusters from one agent: memory per extra cluster, and recovery after a cluster comes back.

The same N apps (4 objects each) are synced by three agents in turn, and each agent's
resident memory is read once it is quiet (the median of five samples over two seconds):

  one cluster     every app on the local cluster, no `[[clusters]]`
  one + declared  the same, with a second cluster declared in `[[clusters]]` and no app on it
  two clusters    half the apps on each (`local-cluster up --name second`)

With the third agent running, the second cluster is stopped (`local-cluster stop --name
second`): the time until all of its apps show Unknown is measured, a new commit is pushed
and every app refreshed (the home cluster's apps must reach it while the other is down),
and the cluster is started again as it was. Recovery is the time from its API server's
first answer (its `/version`, polled every 50 ms) to all of its apps Synced at the new commit.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Sequence

from bench.agents import AppEntry, synced_at, synced_healthy_at, wait_apps, wait_quiet
from bench.console import BenchError, say
from bench.kube import Kube
from bench.report import Report, mib, seconds
from bench.run import RUN_LABEL, Bench, main, parser
from tests.support.agent import AgentProcess
from tests.support.cluster import LocalCluster, ensure_cluster, pause_cluster, stop_cluster

SECOND = "second"


async def quiet_rss(agent: AgentProcess) -> int:
    """The agent's resident memory (KiB) once its API traffic has stopped: the median of five samples."""
    await wait_quiet(agent, quiet=3.0, within=60.0)
    samples = []
    for _ in range(5):
        samples.append(agent.stats().rss_kib)
        await asyncio.sleep(0.5)
    return int(statistics.median(samples))


async def run_agent(bench: Bench, entries: Sequence[AppEntry], sha: str, second: LocalCluster | None) -> AgentProcess:
    agent = await bench.start_agent(entries, poll_interval="1h",
                                    clusters={SECOND: second.kubeconfig} if second else None)
    await wait_apps(agent, [e.name for e in entries], synced_healthy_at(sha), within=180,
                    what="every app Synced and Healthy")
    return agent


async def first_answer(kube: Kube, *, within: float) -> float:
    """time.monotonic() when the API server first answers (`/version`, which the agent's probe asks too)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            await kube.call("GET", "/version")
            return time.monotonic()
        except BenchError:
            await asyncio.sleep(0.05)
    raise BenchError(f"the second cluster did not answer within {within:.0f}s")


async def outage(bench: Bench, agent: AgentProcess, home: list[str], edge: list[str], kube: Kube,
                 out: Report) -> None:
    """Stop the second cluster, push a commit, start the cluster again; add the times to `out`."""
    await asyncio.to_thread(pause_cluster, SECOND)
    stopped = time.monotonic()
    unknown = await wait_apps(agent, edge, lambda app: app.get("sync_status") == "Unknown", within=60,
                              what="the second cluster's apps Unknown", interval=0.05)
    out.add("second cluster stopped → all its apps Unknown", seconds(unknown - stopped))
    sha = await bench.commit_apps(len(home) + len(edge), "v2")
    asked = time.monotonic()
    for name in [*home, *edge]:
        await agent.refresh(name)
    reached = await wait_apps(agent, home, synced_at(sha), within=60, what="the home apps at the new commit",
                              interval=0.05)
    out.add("home apps at a new commit while the second is down", seconds(reached - asked))
    starting = time.monotonic()
    restart = asyncio.create_task(asyncio.to_thread(ensure_cluster, SECOND))
    try:
        answered = await first_answer(kube, within=120)
        converged = await wait_apps(agent, edge, synced_at(sha), within=120, what="the second cluster's apps",
                                    interval=0.05)
    finally:
        await restart
    out.add("second cluster's API answers → its apps Synced at the new commit", seconds(converged - answered))
    out.add("`local-cluster up` started → its apps Synced", seconds(converged - starting))


async def measure(bench: Bench, args: argparse.Namespace) -> Report:
    second = await asyncio.to_thread(ensure_cluster, SECOND)
    kube = Kube(second.kubeconfig)
    edge_namespace = f"bench-{bench.run_id}-edge"
    out = Report(f"Several clusters, {args.apps} apps", f"clusters --apps {args.apps}")
    try:
        await kube.create_namespace(edge_namespace, {RUN_LABEL: bench.run_id})
        sha = await bench.commit_apps(args.apps)
        namespace = await bench.namespace("home")
        rss: dict[str, int] = {}
        for tag, declared in (("one", False), ("declared", True)):
            entries = [AppEntry(f"{bench.prefix}-{tag}{i}", i, namespace) for i in range(1, args.apps + 1)]
            say(f"{tag}: {args.apps} apps on the local cluster" + (", the second declared" if declared else ""))
            agent = await run_agent(bench, entries, sha, second if declared else None)
            rss[tag] = await quiet_rss(agent)
            await agent.stop()
        half = args.apps // 2
        entries = [AppEntry(f"{bench.prefix}-two{i}", i, namespace if i <= half else edge_namespace,
                            cluster="" if i <= half else SECOND) for i in range(1, args.apps + 1)]
        say(f"two: {half} apps on each cluster")
        agent = await run_agent(bench, entries, sha, second)
        rss["two"] = await quiet_rss(agent)
        out.add("agent RSS, every app on one cluster", mib(rss["one"]))
        out.add("agent RSS, the same with a second cluster declared, no app on it", mib(rss["declared"]))
        out.add("agent RSS, half the apps on each of two clusters", mib(rss["two"]))
        out.add("memory per extra cluster (two minus one)", mib(rss["two"] - rss["one"]))
        await outage(bench, agent, [e.name for e in entries if not e.cluster], [e.name for e in entries if e.cluster],
                     kube, out)
    finally:
        await kube.call("DELETE", f"/api/v1/namespaces/{edge_namespace}", missing_ok=True)
        await kube.close()
        if second.started_here and not args.keep_cluster:
            await asyncio.to_thread(stop_cluster, SECOND)
    out.notes.append("RSS: /proc VmRSS of the agent process, median of 5 samples once its API traffic stopped")
    return out


def parse(argv: list[str]) -> argparse.Namespace:
    p = parser("clusters", __doc__ or "", timeout=900)
    p.add_argument("--apps", type=int, default=20, help="number of apps (default: %(default)s)")
    args = p.parse_args(argv)
    if args.apps < 2:
        p.error("--apps must be at least 2")
    return args


if __name__ == "__main__":
    sys.exit(main("clusters", measure, parse(sys.argv[1:])))
