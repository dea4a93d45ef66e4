"""Push-to-applied: from `git push` plus the webhook to the changed object in the cluster.

One app (4 objects) is synced with a long poll interval, so only the webhook can make it
follow a push. Each sample commits a new ConfigMap `data.value` (not timed), then times:
`git push` over HTTP to the loopback git server, the generic webhook
(`POST /api/webhook`, body `{"repo": URL, "ref": "refs/heads/main"}`, header
`X-Gitops-Token`, the secret given to the agent through `[agent] webhook_secret_env`), and
a watch on the ConfigMap from its resourceVersion before the push until an event shows the
new value. A sample is the time from the start of the push to that event.

Target (issue 9): p50 under 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import secrets
import sys
import time
from dataclasses import dataclass

from bench.agents import synced_healthy_at, wait_apps
from bench.apps import CONFIG_MAP, app_dir, app_files
from bench.console import BenchError, say
from bench.report import Report, percentile, seconds
from bench.run import Bench, main, parser
from tests.support.agent import AgentProcess


@dataclass(frozen=True)
class Sample:
    push: float  # git push
    hook: float  # the webhook's answer
    total: float  # push start → the new value seen in the cluster


async def webhook(agent: AgentProcess, repo_url: str, secret: str, app: str) -> None:
    body = json.dumps({"repo": repo_url, "ref": "refs/heads/main"}).encode()
    status, text = await agent.request("POST", "/api/webhook", body=body, headers={
        "Content-Type": "application/json", "X-Gitops-Token": secret, "X-Gitops-Delivery": secrets.token_hex(8)})
    if status != 202 or app not in json.loads(text).get("refreshed", []):
        raise BenchError(f"POST /api/webhook: HTTP {status}: {text[:300]} (expected 202 refreshing {app})")


async def sample(bench: Bench, agent: AgentProcess, ctx: dict[str, str], number: int,
                 args: argparse.Namespace) -> Sample | None:
    """One push; None when the value did not reach the cluster within --sample-timeout."""
    value = f"push-{number}-{secrets.token_hex(2)}"
    live = await bench.k.get(CONFIG_MAP, ctx["namespace"], app_dir(1))
    if live is None:
        raise BenchError(f"ConfigMap {ctx['namespace']}/{app_dir(1)} is gone")
    await asyncio.to_thread(bench.repo.write, dict(app_files(1, value)))
    await asyncio.to_thread(bench.repo.commit, f"value {value}")
    started = time.monotonic()
    await asyncio.to_thread(bench.repo.push)
    pushed = time.monotonic()
    await webhook(agent, bench.repo_url, ctx["secret"], ctx["app"])
    hooked = time.monotonic()
    try:
        applied = await bench.k.watch_until(CONFIG_MAP, ctx["namespace"], app_dir(1),
                                            live["metadata"]["resourceVersion"],
                                            lambda obj: obj.get("data", {}).get("value") == value,
                                            within=args.sample_timeout)
    except TimeoutError:
        return None
    return Sample(push=pushed - started, hook=hooked - pushed, total=applied - started)


def report(args: argparse.Namespace, samples: list[Sample], misses: int) -> Report:
    out = Report(f"Push to applied via the generic webhook, {args.samples} samples",
                 f"push_to_applied --samples {args.samples}")
    out.add("samples applied", f"{len(samples)} of {args.samples}", f"{args.samples} of {args.samples}")
    if samples:
        totals = [s.total for s in samples]
        out.add("p50 push start → applied", seconds(percentile(totals, 50)), "< 2 s")
        out.add("p95 push start → applied", seconds(percentile(totals, 95)))
        out.add("min / max", f"{seconds(min(totals))} / {seconds(max(totals))}")
        out.add("p50 of it: git push", seconds(percentile([s.push for s in samples], 50)))
        out.add("p50 of it: webhook answer", seconds(percentile([s.hook for s in samples], 50)))
        out.add("p50 of it: webhook answered → applied",
                seconds(percentile([s.total - s.push - s.hook for s in samples], 50)))
    if misses:
        out.notes.append(f"{misses} samples not applied within --sample-timeout {args.sample_timeout:g}s")
    out.notes.append(f"agent [agent] overrides: {', '.join(args.agent_set) or 'none (defaults)'}")
    return out


async def measure(bench: Bench, args: argparse.Namespace) -> Report:
    sha = await bench.commit_apps(1)
    namespace = await bench.namespace("push")
    apps = bench.apps(1, namespace)
    secret = secrets.token_hex(16)
    agent = await bench.start_agent(apps, poll_interval="1h", webhook_secret=secret)
    await wait_apps(agent, [apps[0].name], synced_healthy_at(sha), within=120, what="the app Synced and Healthy")
    ctx = {"namespace": namespace, "secret": secret, "app": apps[0].name}
    samples: list[Sample] = []
    misses = 0
    for number in range(1, args.samples + 1):
        await asyncio.sleep(args.gap * (1 + random.random()))
        result = await sample(bench, agent, ctx, number, args)
        say(f"sample {number}/{args.samples}: " + (seconds(result.total) if result else "not applied"))
        if result is None:
            misses += 1
            if misses >= args.max_misses:
                raise BenchError(f"{misses} pushes did not reach the cluster within {args.sample_timeout:g}s")
        else:
            samples.append(result)
        agent.check_alive()
    return report(args, samples, misses)


def parse(argv: list[str]) -> argparse.Namespace:
    p = parser("push_to_applied", __doc__ or "", timeout=900)
    p.add_argument("--samples", type=int, default=20, help="number of pushes (default: %(default)s)")
    p.add_argument("--sample-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="give up on one sample after this long (default: %(default)s)")
    p.add_argument("--max-misses", type=int, default=3,
                   help="stop after this many pushes did not reach the cluster (default: %(default)s)")
    p.add_argument("--gap", type=float, default=0.5, metavar="SECONDS",
                   help="pause before each sample, randomly 1-2 times this (default: %(default)s)")
    args = p.parse_args(argv)
    if args.samples < 1:
        p.error("--samples must be at least 1")
    return args


if __name__ == "__main__":
    sys.exit(main("push_to_applied", measure, parse(sys.argv[1:])))
