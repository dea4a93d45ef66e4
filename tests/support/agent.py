"""The agent as users run it: `python -m agent run --config FILE` in a subprocess, and what it shows.

One helper for the integration tests and the benchmarks: write the `[agent]` table and the
`[[applications]]` entries, spawn the process with its JSON log in a file, talk to its HTTP
API (applications, probes, /metrics), read its log and its /proc figures, and stop it.
`agent_processes` is the fixture body: it starts agents against the local cluster and kills
what is still running afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from tests.support.cluster import REPO_ROOT
from tests.support.metrics import sample_total, samples
from tests.support.ports import free_port

App = dict[str, Any]


class AgentFailure(Exception):
    """The agent exited, did not answer in time, or answered with an error; the message is for a person."""


def agent_table(*, port: int, state_dir: Path, kubeconfig: Path | None, poll_interval: str = "1m",
                poll_jitter: str = "0s", extra: Mapping[str, str] | None = None) -> str:
    """The `[agent]` table and a blank line; `extra` adds or replaces keys whose values are TOML already.

    Without a kubeconfig the agent looks for the in-cluster variables, then $KUBECONFIG.
    """
    keys = {"listen": json.dumps(f"127.0.0.1:{port}"), "state_dir": json.dumps(str(state_dir))}
    if kubeconfig is not None:
        keys["kubeconfig"] = json.dumps(str(kubeconfig))
    keys.update(poll_interval=json.dumps(poll_interval), poll_jitter=json.dumps(poll_jitter))
    keys.update(extra or {})
    return "\n".join(["[agent]", *(f"{key} = {value}" for key, value in keys.items())]) + "\n\n"


def application_toml(name: str, repo: str, *, namespace: str = "", path: str = "", revision: str = "",
                     extra: Mapping[str, str] | None = None, sync_policy: Mapping[str, str] | None = None) -> str:
    """One `[[applications]]` entry and a blank line. Empty keys are left out (the agent's defaults);
    the values of `extra` and `sync_policy` are TOML already (`true`, `["CreateNamespace=true"]`)."""
    keys = {"name": name, "repo": repo, "revision": revision, "path": path, "namespace": namespace}
    lines = ["[[applications]]", *(f"{key} = {json.dumps(value)}" for key, value in keys.items() if value)]
    lines += [f"{key} = {value}" for key, value in (extra or {}).items()]
    if sync_policy:
        lines += ["[applications.sync_policy]", *(f"{key} = {value}" for key, value in sync_policy.items())]
    return "\n".join(lines) + "\n\n"


@dataclass(frozen=True)
class ProcStats:
    rss_kib: int  # VmRSS
    peak_rss_kib: int  # VmHWM
    cpu_seconds: float  # utime + stime


def proc_stats(pid: int) -> ProcStats:
    """Memory from /proc/PID/status and CPU time from /proc/PID/stat (the process only, not its children)."""
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(stat[11]) + int(stat[12])  # fields 14 and 15 (utime, stime), counted after the comm field
    return ProcStats(rss_kib=int(fields["VmRSS"].split()[0]), peak_rss_kib=int(fields["VmHWM"].split()[0]),
                     cpu_seconds=ticks / os.sysconf("SC_CLK_TCK"))


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies, even by SIGKILL."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class AgentProcess:
    """One running `python -m agent run`, its HTTP API at `base_url` and its JSON log at `log_path`."""

    def __init__(self, proc: asyncio.subprocess.Process, *, port: int, log_path: Path, config_path: Path,
                 started: float, keep_alive: bool = False) -> None:
        self.proc, self.log_path, self.started = proc, log_path, started  # started: monotonic, just before spawn
        self.base_url = f"http://127.0.0.1:{port}"
        self.config_path = config_path  # the file it was started with: rewrite it and send SIGHUP to reload
        self._keep_alive = keep_alive
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    async def spawn(cls, config_path: Path, *, port: int, log_path: Path, env: Mapping[str, str] | None = None,
                    detached: bool = False, keep_alive: bool = False) -> AgentProcess:
        """Start the agent on `config_path` (whose `[agent] listen` is on `port`), its log going to `log_path`.

        `detached`: in a session of its own (a Ctrl-C at the terminal reaches only the caller), and
        sent SIGTERM when the caller dies, even by SIGKILL. `keep_alive`: one HTTP session for every
        request, as a dashboard would keep, instead of a connection per request.
        """
        started = time.monotonic()
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent", "run", "--config", str(config_path), "--log-format", "json",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd=REPO_ROOT,
                env=dict(env) if env is not None else None,
                start_new_session=detached, preexec_fn=_die_with_parent if detached else None,
            )
        return cls(proc, port=port, log_path=log_path, config_path=config_path, started=started,
                   keep_alive=keep_alive)

    # -- HTTP ------------------------------------------------------------------ #

    async def _send(self, method: str, path: str, body: bytes | None,
                    headers: Mapping[str, str] | None) -> tuple[int, str]:
        timeout = aiohttp.ClientTimeout(total=60)
        if not self._keep_alive:
            async with aiohttp.ClientSession(timeout=timeout) as session, session.request(
                    method, self.base_url + path, data=body, headers=headers) as resp:
                return resp.status, await resp.text()
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=timeout)
        async with self._session.request(method, self.base_url + path, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        """(status, text). A refused connection is re-raised, or AgentFailure with the log when the agent died."""
        try:
            return await self._send(method, path, body, headers)
        except aiohttp.ClientConnectionError:
            with contextlib.suppress(TimeoutError):  # a crashed agent: let its exit be noticed, then say why
                await asyncio.wait_for(self.proc.wait(), 0.1)
            self.check_alive()
            raise

    async def get(self, path: str) -> tuple[int, str]:
        return await self.request("GET", path)

    async def post(self, path: str) -> int:
        return (await self.request("POST", path))[0]

    async def get_json(self, path: str) -> tuple[int, Any]:
        """(status, decoded body), the body None when it is not JSON."""
        status, text = await self.get(path)
        try:
            return status, json.loads(text)
        except ValueError:
            return status, None

    async def post_json(self, path: str, body: Any = None) -> tuple[int, Any]:
        """POST `body` as JSON (nothing when None); (status, decoded answer)."""
        if body is None:
            status, text = await self.request("POST", path)
        else:
            status, text = await self.request("POST", path, body=json.dumps(body).encode(),
                                              headers={"Content-Type": "application/json"})
        return status, json.loads(text)

    # -- the API's views --------------------------------------------------------- #

    async def app(self, name: str) -> App | None:
        """The app as `GET /api/v1/applications/{name}` shows it; None while the agent is not up."""
        try:
            status, body = await self.get_json(f"/api/v1/applications/{name}")
        except aiohttp.ClientConnectionError:
            return None
        return body if status == 200 else None

    async def reconciled(self, name: str) -> App | None:
        """The app once it was reconciled at least once, else None."""
        app = await self.app(name)
        return app if app and app["reconciled_at"] else None

    async def synced(self, name: str, sha: str | None = None) -> App | None:
        """The app once it is Synced (at commit `sha` when given), else None."""
        app = await self.app(name)
        return app if app and app["sync_status"] == "Synced" and sha in (None, app["revision"]) else None

    async def applications(self) -> dict[str, App]:
        """Every app of `GET /api/v1/applications`, by name."""
        status, text = await self.get("/api/v1/applications")
        if status != 200:
            raise AgentFailure(f"GET /api/v1/applications: HTTP {status}: {text[:300]}")
        return {app["name"]: app for app in json.loads(text)}

    async def refresh(self, name: str) -> None:
        assert await self.post(f"/api/v1/applications/{name}/refresh") == 202

    async def readiness(self) -> dict[str, Any] | None:
        """The body of /readyz; None while the agent is not up."""
        try:
            _, body = await self.get_json("/readyz")
        except aiohttp.ClientConnectionError:
            return None
        return body if isinstance(body, dict) else None

    async def is_leader(self) -> bool | None:
        body = await self.readiness()
        return None if body is None else bool(body["checks"]["leader"]["leader"])

    async def wait_up(self, within: float = 60.0) -> float:
        """time.monotonic() when /healthz first answered."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(aiohttp.ClientConnectionError):
                if (await self._send("GET", "/healthz", None, None))[0] == 200:
                    return time.monotonic()
            await asyncio.sleep(0.05)
        raise AgentFailure(f"the agent did not answer /healthz within {within:.0f}s; its log ends:\n{self.log_tail()}")

    # -- /metrics ------------------------------------------------------------------ #

    async def metrics(self) -> str:
        status, text = await self.get("/metrics")
        if status != 200:
            raise AgentFailure(f"GET /metrics: HTTP {status}")
        return text

    async def samples(self, sample_name: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample called `sample_name` in /metrics."""
        return samples(await self.metrics(), sample_name)

    async def metric(self, sample_name: str, **labels: str) -> float:
        """The sum of the samples called `sample_name` whose labels include `labels`."""
        return sample_total(await self.metrics(), sample_name, **labels)

    async def totals(self, sample_name: str, *labels: str) -> Counter[str]:
        """A counter summed by some labels (values joined by a space), e.g. totals("...", "verb")."""
        sums: Counter[str] = Counter()
        for sample_labels, value in await self.samples(sample_name):
            sums[" ".join(sample_labels.get(label, "") for label in labels)] += int(value)
        return sums

    async def kube_requests(self, *labels: str) -> Counter[str]:
        """gitops_agent_kube_requests_total by verb, or by the labels given (verb, resource_kind, code)."""
        return await self.totals("gitops_agent_kube_requests_total", *(labels or ("verb",)))

    # -- the process: log, figures, stop ------------------------------------------ #

    @property
    def logs(self) -> str:
        return self.log_path.read_text()

    @property
    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines, decoded."""
        return [json.loads(line) for line in self.logs.splitlines() if line.startswith("{")]

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.logs.splitlines()[-lines:])
        return "(no log)"

    def logged_errors(self) -> list[str]:
        """Messages of the log lines at level error (or above)."""
        found = []
        for line in self.logs.splitlines():
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if str(event.get("level", "")).lower() in ("error", "critical"):
                    found.append(str(event.get("message") or event.get("msg") or line))
        return found

    def check_alive(self) -> None:
        if self.proc.returncode is not None:
            raise AgentFailure(f"the agent exited with code {self.proc.returncode}; its log ends:\n{self.log_tail()}")

    def stats(self) -> ProcStats:
        self.check_alive()
        return proc_stats(self.proc.pid)

    async def stop(self, grace: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after `grace` seconds; the exit code (0 after a clean stop)."""
        await self._close_session()
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def kill(self) -> None:
        """SIGKILL, if it still runs: for clean-up after a test."""
        await self._close_session()
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class StartAgent(Protocol):
    """`start(config_body, ...)`: what the `start_agent` fixture yields."""

    async def __call__(self, config_body: str, *, name: str = "", poll_interval: str = "1m",
                       kubeconfig: Path | None = None, in_cluster: bool = False,
                       env: Mapping[str, str] | None = None,
                       agent_keys: Mapping[str, str] | None = None) -> AgentProcess: ...


async def agent_processes(tmp_path: Path, cluster_kubeconfig: Path) -> AsyncIterator[StartAgent]:
    """Yields `start`, which writes `[agent]` plus `config_body` and starts the agent; kills leftovers after.

    `name` gives the agent a directory (and state) of its own under `tmp_path`; without it the
    agent keeps its state in `tmp_path/state`, so a second agent started later takes it over.
    The agent talks to the local cluster through `cluster_kubeconfig` (or the `kubeconfig`
    given), or with `in_cluster` through the variables in `env` (KUBECONFIG is then dropped).
    `env` is added to the environment; `agent_keys` to `[agent]` (values are TOML already).
    """
    agents: list[AgentProcess] = []

    async def start(config_body: str, *, name: str = "", poll_interval: str = "1m",
                    kubeconfig: Path | None = None, in_cluster: bool = False,
                    env: Mapping[str, str] | None = None,
                    agent_keys: Mapping[str, str] | None = None) -> AgentProcess:
        home = tmp_path / name if name else tmp_path
        home.mkdir(parents=True, exist_ok=True)
        port = free_port()
        config = home / f"agent-{port}.toml"
        config.write_text(agent_table(port=port, state_dir=home / "state", poll_interval=poll_interval,
                                      kubeconfig=None if in_cluster else kubeconfig or cluster_kubeconfig,
                                      extra=agent_keys) + config_body)
        environ = {key: value for key, value in os.environ.items() if not (in_cluster and key == "KUBECONFIG")}
        environ.update(env or {})
        agent = await AgentProcess.spawn(config, port=port, log_path=home / f"agent-{port}.log", env=environ)
        agents.append(agent)
        return agent

    yield start
    for agent in agents:
        await agent.kill()
