"""Drift: how fast the agent reverts an outside change to an object it manages (self_heal = true).

One app (4 objects) with `self_heal = true` is synced. Each sample changes the ConfigMap's
`data.value` from outside (a JSON merge patch with the admin kubeconfig, field manager
`bench-drift`) and watches the ConfigMap from the patch's resourceVersion until an event shows
the value from Git again. A sample is the time from the patch's answer to that event.

The issue's target is drift handled by events (a watch), p50 under 1 s. An agent that only
notices drift when it polls reverts after up to --poll-interval; with the default 3m each
sample would then run into --sample-timeout and count as a miss.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time

from bench.agents import synced_healthy_at, wait_apps
from bench.apps import CONFIG_MAP, app_dir
from bench.console import BenchError, say
from bench.report import Report, by_verb, delta, percentile, seconds
from bench.run import Bench, main, parser

FROM_GIT = "v1"


async def sample(bench: Bench, namespace: str, number: int, args: argparse.Namespace) -> float | None:
    """Seconds from the outside patch to the revert, None when it did not come within --sample-timeout."""
    name = app_dir(1)
    patched = await bench.k.merge_patch(CONFIG_MAP, namespace, name, {"data": {"value": f"drift-{number}"}},
                                        manager="bench-drift")
    started = time.monotonic()
    try:
        reverted = await bench.k.watch_until(
            CONFIG_MAP, namespace, name, patched["metadata"]["resourceVersion"],
            lambda obj: obj.get("data", {}).get("value") == FROM_GIT, within=args.sample_timeout)
    except TimeoutError:
        return None
    return reverted - started


async def restore(bench: Bench, namespace: str) -> None:
    """After a missed sample: put the Git value back ourselves, so the next sample starts from the same state."""
    await bench.k.merge_patch(CONFIG_MAP, namespace, app_dir(1), {"data": {"value": FROM_GIT}}, manager="bench-drift")


def report(args: argparse.Namespace, times: list[float], misses: int, requests: str) -> Report:
    out = Report(f"Drift revert with self_heal, {args.samples} samples", f"drift --samples {args.samples}")
    out.add("samples reverted", f"{len(times)} of {args.samples}", f"{args.samples} of {args.samples}")
    if times:
        out.add("p50 outside patch → reverted", seconds(percentile(times, 50)), "< 1 s")
        out.add("p95 outside patch → reverted", seconds(percentile(times, 95)))
        out.add("min / max", f"{seconds(min(times))} / {seconds(max(times))}")
    out.add("agent API requests during the samples", requests)
    if misses:
        out.notes.append(f"{misses} samples not reverted within --sample-timeout {args.sample_timeout:g}s "
                         f"(agent poll_interval {args.poll_interval})")
    out.notes.append(f"agent [agent] overrides: {', '.join(args.agent_set) or 'none (defaults)'}")
    return out


async def measure(bench: Bench, args: argparse.Namespace) -> Report:
    sha = await bench.commit_apps(1, FROM_GIT)
    namespace = await bench.namespace("drift")
    apps = bench.apps(1, namespace, self_heal=True)
    agent = await bench.start_agent(apps, poll_interval=args.poll_interval)
    await wait_apps(agent, [apps[0].name], synced_healthy_at(sha), within=120, what="the app Synced and Healthy")
    await asyncio.sleep(args.gap)
    before = await agent.kube_requests()
    times: list[float] = []
    misses = 0
    for number in range(1, args.samples + 1):
        took = await sample(bench, namespace, number, args)
        say(f"sample {number}/{args.samples}: " + (seconds(took) if took is not None else "not reverted"))
        if took is None:
            misses += 1
            await restore(bench, namespace)
            if misses >= args.max_misses:
                raise BenchError(f"{misses} samples were not reverted within {args.sample_timeout:g}s: "
                                 f"is self-heal event-driven yet? (try --poll-interval 2s to check the mechanics)")
        else:
            times.append(took)
        agent.check_alive()
        await asyncio.sleep(args.gap * (1 + random.random()))  # no lock-step with a periodic poll
    requests = delta(await agent.kube_requests(), before)
    return report(args, times, misses, f"{sum(requests.values())} ({by_verb(requests)})")


def parse(argv: list[str]) -> argparse.Namespace:
    p = parser("drift", __doc__ or "", timeout=900)
    p.add_argument("--samples", type=int, default=20, help="number of outside patches (default: %(default)s)")
    p.add_argument("--poll-interval", default="3m",
                   help="the agent's poll_interval, a duration such as 3m or 2s (default: %(default)s)")
    p.add_argument("--sample-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="give up on one sample after this long (default: %(default)s)")
    p.add_argument("--max-misses", type=int, default=3,
                   help="stop after this many samples were not reverted (default: %(default)s)")
    p.add_argument("--gap", type=float, default=0.5, metavar="SECONDS",
                   help="pause between samples, randomly 1-2 times this, so the agent's follow-up reconcile ends "
                        "(default: %(default)s)")
    args = p.parse_args(argv)
    if args.samples < 1:
        p.error("--samples must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(main("drift", measure, parse(sys.argv[1:])))
