"""The agent under test: its configuration for N apps, and waiting on what its API and /metrics show.

The process itself is `tests.support.agent.AgentProcess`, the one the integration tests run.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import tomllib
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from bench.apps import Obj, app_dir
from bench.console import BenchError
from tests.support.agent import AgentProcess, agent_table, application_toml


@dataclass(frozen=True)
class AppEntry:
    """One `[[applications]]` entry: app `name` deploys `apps/app-NNNN` into `namespace`."""

    name: str
    index: int
    namespace: str
    self_heal: bool = False
    cluster: str = ""  # empty: the cluster the agent runs against


def _toml_value(text: str) -> str:
    """`text` if it is a TOML value (`1000`, `"5s"`, `true`), else `text` as a TOML string."""
    try:
        tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return json.dumps(text)
    return text


def agent_config(*, port: int, state_dir: Path, kubeconfig: Path, repo_url: str, apps: Sequence[AppEntry],
                 poll_interval: str, poll_jitter: str = "0s", agent_set: Sequence[str] = (),
                 webhook_secret_env: str = "", clusters: Mapping[str, Path] | None = None) -> str:
    """The TOML configuration: `[agent]` (plus `agent_set` KEY=VALUE overrides), `[[clusters]]` (name →
    kubeconfig) and one entry per app."""
    extra: dict[str, str] = {}
    if webhook_secret_env:
        extra["webhook_secret_env"] = json.dumps(webhook_secret_env)
    for item in agent_set:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[a-z_]+", key.strip()):
            raise BenchError(f"--agent-set wants KEY=VALUE, not {item!r}")
        extra[key.strip()] = _toml_value(value.strip())
    entries = [application_toml(app.name, repo_url, namespace=app.namespace, path=f"apps/{app_dir(app.index)}",
                                revision="main", sync_policy={"self_heal": "true"} if app.self_heal else None,
                                extra={"cluster": json.dumps(app.cluster)} if app.cluster else None)
               for app in apps]
    declared = [f"[[clusters]]\nname = {json.dumps(name)}\nkubeconfig = {json.dumps(str(path))}\n\n"
                for name, path in (clusters or {}).items()]
    return agent_table(port=port, state_dir=state_dir, kubeconfig=kubeconfig, poll_interval=poll_interval,
                       poll_jitter=poll_jitter, extra=extra) + "".join(declared) + "".join(entries)


def synced_at(sha: str) -> Callable[[Obj], bool]:
    return lambda app: app.get("sync_status") == "Synced" and app.get("revision") == sha


def synced_healthy_at(sha: str) -> Callable[[Obj], bool]:
    return lambda app: synced_at(sha)(app) and app.get("health_status") == "Healthy"


def _pending_summary(apps: Mapping[str, Obj], pending: Sequence[str]) -> str:
    states = Counter(f"{apps[n].get('sync_status')}/{apps[n].get('health_status')}" if n in apps else "not listed"
                     for n in pending)
    message = next((str(apps[n].get("message")) for n in pending if n in apps and apps[n].get("message")), "")
    return ", ".join(f"{count} {state}" for state, count in states.most_common()) + (
        f"; e.g. {pending[0]}: {message}" if message else "")


def poll_every(apps: int, requested: float | None, *, least: float = 0.25) -> float:
    """Seconds between reads of /api/v1/applications while waiting: `requested`, else longer for more
    apps (a read of ten thousand apps that changed costs the agent ~0.1 s: read every 0.25 s, it would
    measure the benchmark more than the agent)."""
    return requested if requested else max(least, apps / 2000)


async def wait_apps(agent: AgentProcess, names: Sequence[str], done: Callable[[Obj], bool], *, within: float,
                    what: str, interval: float = 0.25) -> float:
    """time.monotonic() of the first poll of /api/v1/applications that showed `done` for every app."""
    deadline = time.monotonic() + within
    while True:
        agent.check_alive()
        try:
            apps = await agent.applications()
        except aiohttp.ClientConnectionError:
            apps = {}
        pending = [n for n in names if n not in apps or not done(apps[n])]
        if not pending:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {within:.0f}s waiting for {what}: {len(pending)} of {len(names)} "
                             f"apps not there ({_pending_summary(apps, pending)})")
        await asyncio.sleep(interval)


async def wait_quiet(agent: AgentProcess, *, quiet: float, within: float) -> bool:
    """Wait until the agent's Kubernetes request count stayed the same for `quiet` seconds; False if it never did."""
    deadline = time.monotonic() + within
    last, since = await agent.kube_requests(), time.monotonic()
    while time.monotonic() < deadline:
        await asyncio.sleep(min(0.5, quiet))
        now = await agent.kube_requests()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return True
    return False
