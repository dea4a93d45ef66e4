"""Sharded cold sync: N apps x 4 objects from one repository on R replicas with `sharding = true`,
from the replicas' start to every app Synced, as any replica's list shows it.

Per replica: peak RSS (VmHWM), RSS once every app is Healthy, the buckets it ended up owning
and its API requests; in all: apps/s and API requests per app (membership, owner table and
shared state included). Compare with `cold_sync` (one agent, no sharding) at the same --apps.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import Counter
from dataclasses import dataclass, field

from bench.agents import agent_config, synced_at, synced_healthy_at, wait_apps
from bench.apps import MAX_APPS
from bench.console import say
from bench.report import Report, by_verb, mib, seconds
from bench.run import Bench, main, parser
from tests.support.agent import AgentProcess
from tests.support.ports import free_port


@dataclass
class Replica:
    agent: AgentProcess
    peak_rss_kib: int = 0
    rss_kib: int = 0
    cpu_seconds: float = 0.0
    buckets: int = 0
    requests: Counter[str] = field(default_factory=Counter)


async def start_replica(bench: Bench, args: argparse.Namespace, namespace: str, index: int) -> AgentProcess:
    """One replica: the bench's agent config plus the sharding keys, its own state and port."""
    assert bench.cluster is not None
    port = free_port()
    sharding = ["sharding=true", f"leader_election_namespace={namespace}",
                f"advertise_url=http://127.0.0.1:{port}", *args.agent_set]
    config = bench.tmp / f"replica-{index}.toml"
    config.write_text(agent_config(port=port, state_dir=bench.tmp / f"state-{index}",
                                   kubeconfig=bench.cluster.kubeconfig,
                                   repo_url=bench.repo_url, apps=bench.apps(args.apps, namespace),
                                   poll_interval="1h", agent_set=sharding))
    env = dict(os.environ, PATH=f"{bench.cluster.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    agent = await AgentProcess.spawn(config, port=port, log_path=bench.tmp / f"replica-{index}.log", env=env,
                                     detached=True, keep_alive=True)
    bench.agents.append(agent)
    return agent


async def buckets_of(agent: AgentProcess) -> int:
    _, body = await agent.get("/readyz")
    return len((json.loads(body).get("checks", {}).get("shards") or {}).get("buckets") or [])


async def measure(bench: Bench, args: argparse.Namespace) -> Report:
    say(f"committing {args.apps} apps x 4 objects")
    sha = await bench.commit_apps(args.apps)
    namespace = await bench.namespace("sharded")
    names = [app.name for app in bench.apps(args.apps, namespace)]
    say(f"{args.replicas} replicas, {args.apps} apps into {namespace}")
    agents = await asyncio.gather(*(start_replica(bench, args, namespace, i) for i in range(args.replicas)))
    started = min(agent.started for agent in agents)
    synced = await wait_apps(agents[0], names, synced_at(sha), within=args.timeout, what="every app Synced",
                             interval=args.poll) - started
    healthy = await wait_apps(agents[0], names, synced_healthy_at(sha), within=args.timeout,
                              what="every app Synced and Healthy", interval=args.poll) - started
    replicas = []
    for agent in agents:
        stats = agent.stats()
        replicas.append(Replica(agent, stats.peak_rss_kib, stats.rss_kib, stats.cpu_seconds, await buckets_of(agent),
                                await agent.kube_requests()))
    return report(args, synced, healthy, replicas)


def report(args: argparse.Namespace, synced: float, healthy: float, replicas: list[Replica]) -> Report:
    out = Report(f"Sharded cold sync of {args.apps} apps x 4 objects on {args.replicas} replicas",
                 f"sharded --apps {args.apps} --replicas {args.replicas}")
    total: Counter[str] = Counter()
    for replica in replicas:
        total.update(replica.requests)
    out.add("start → all Synced", seconds(synced))
    out.add("apps/s", f"{args.apps / synced:.1f}")
    out.add("start → all Synced+Healthy", seconds(healthy))
    out.add("API requests until all Healthy, all replicas", f"{sum(total.values())} "
            f"({sum(total.values()) / args.apps:.1f}/app)")
    out.add("API requests by verb", by_verb(total))
    for index, replica in enumerate(replicas):
        out.add(f"replica {index}: buckets owned", str(replica.buckets))
        out.add(f"replica {index}: peak RSS (VmHWM)", mib(replica.peak_rss_kib))
        out.add(f"replica {index}: RSS when all Healthy", mib(replica.rss_kib))
        out.add(f"replica {index}: CPU", f"{replica.cpu_seconds:.2f} s")
    out.notes.append(f"[agent] overrides: {', '.join(args.agent_set) or 'none (defaults)'}")
    return out


def parse(argv: list[str]) -> argparse.Namespace:
    p = parser("sharded", __doc__ or "", timeout=3600)
    p.add_argument("--apps", type=int, default=100, help="number of apps, 4 objects each (default: %(default)s)")
    p.add_argument("--replicas", type=int, default=2, help="sharded replicas (default: %(default)s)")
    p.add_argument("--poll", type=float, default=0.5, metavar="SECONDS",
                   help="how often to read /api/v1/applications while waiting (default: %(default)s)")
    args = p.parse_args(argv)
    if not 1 <= args.apps <= MAX_APPS or not 1 <= args.replicas <= 8:
        p.error(f"--apps must be 1..{MAX_APPS} and --replicas 1..8")
    return args


if __name__ == "__main__":
    sys.exit(main("sharded", measure, parse(sys.argv[1:])))
