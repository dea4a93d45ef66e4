"""Git requests: how often N apps on one repository ask the git server, per poll interval.

N apps (4 objects each) on one repository are synced with `poll_interval` = --interval.
Then, with nothing pushed, the requests at the loopback git server are counted for
--seconds. dulwich speaks protocol v2 over HTTP: one ls-remote is `GET info/refs` plus a
`POST ls-refs`, and a fetch opens with the same pair before its `POST git-upload-pack`, so
ls-remotes = ls-refs requests - fetches (as tests/integration/test_git_shared_ls_remote.py
counts). The agent's own gitops_agent_git_request_total and its reconciles in the window
are shown alongside, to prove the apps did poll.

Target (issue 9): 1 ls-remote per interval for the whole repository.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from agent.config.reader import parse_duration
from bench.agents import synced_at, wait_apps
from bench.apps import MAX_APPS
from bench.console import say
from bench.report import Report, by_verb, delta
from bench.run import REPO_NAME, Bench, main, parser


def report(args: argparse.Namespace, window: float, counts: dict[str, int], reconciles: int,
           agent_git: str, api: str) -> Report:
    interval = parse_duration(args.interval)
    intervals = window / interval
    ls_remotes = counts["ls-refs"] - counts["fetch"]
    out = Report(f"Git requests of {args.apps} apps on one repository, poll_interval {args.interval}, "
                 f"{args.seconds:g} s", f"git_requests --apps {args.apps}")
    out.add("window", f"{window:.1f} s = {intervals:.1f} intervals")
    out.add("ls-remotes at the server", str(ls_remotes))
    out.add("ls-remotes per interval", f"{ls_remotes / intervals:.2f}", "1")
    out.add("fetches at the server", str(counts["fetch"]), "0")
    out.add("HTTP requests at the server", f"{counts['all']} ({counts['ls-remote']} info/refs, "
            f"{counts['ls-refs']} ls-refs, {counts['fetch']} upload-pack)")
    out.add("reconciles in the window", f"{reconciles} ({reconciles / args.apps / intervals:.2f} per app per interval)")
    out.add("agent's git requests (its metric)", agent_git)
    out.add("agent's API requests in the window", api)
    out.notes.append(f"poll_jitter {args.jitter}; agent [agent] overrides: {', '.join(args.agent_set) or 'none'}")
    return out


async def measure(bench: Bench, args: argparse.Namespace) -> Report:
    assert bench.git is not None
    say(f"committing {args.apps} apps x 4 objects")
    sha = await bench.commit_apps(args.apps)
    namespace = await bench.namespace("git")
    apps = bench.apps(args.apps, namespace)
    agent = await bench.start_agent(apps, poll_interval=args.interval, poll_jitter=args.jitter)
    await wait_apps(agent, [a.name for a in apps], synced_at(sha), within=args.timeout, what="every app Synced")
    await asyncio.sleep(parse_duration(args.interval))  # let the first round's retries and follow-ups pass
    before_reconciles = sum((await agent.totals("gitops_agent_reconcile_total", "name")).values())
    before_git = await agent.totals("gitops_agent_git_request_total", "request")
    before_api = await agent.kube_requests()
    bench.git.reset_counts()
    say(f"counting git requests for {args.seconds:g} s")
    started = time.monotonic()
    await asyncio.sleep(args.seconds)
    window = time.monotonic() - started
    counts = {kind: bench.git.count(repo=REPO_NAME, kind=kind) for kind in ("ls-remote", "ls-refs", "fetch")}
    counts["all"] = len(bench.git.records(repo=REPO_NAME))
    reconciles = sum((await agent.totals("gitops_agent_reconcile_total", "name")).values()) - before_reconciles
    git = by_verb(delta(await agent.totals("gitops_agent_git_request_total", "request"), before_git))
    api = delta(await agent.kube_requests(), before_api)
    return report(args, window, counts, reconciles, git, f"{sum(api.values())} ({by_verb(api)})")


def parse(argv: list[str]) -> argparse.Namespace:
    p = parser("git_requests", __doc__ or "", timeout=900)
    p.add_argument("--apps", type=int, default=100, help="number of apps on the repository (default: %(default)s)")
    p.add_argument("--interval", default="2s", help="the agent's poll_interval (default: %(default)s)")
    p.add_argument("--jitter", default="0s", help="the agent's poll_jitter (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=10.0, help="how long to count (default: %(default)s)")
    args = p.parse_args(argv)
    try:
        interval = parse_duration(args.interval)
        parse_duration(args.jitter)
    except ValueError as exc:
        p.error(str(exc))
    if not 1 <= args.apps <= MAX_APPS or interval <= 0 or args.seconds < interval:
        p.error(f"--apps must be 1..{MAX_APPS} and --seconds at least one --interval")
    return args


if __name__ == "__main__":
    sys.exit(main("git_requests", measure, parse(sys.argv[1:])))
