"""What every benchmark shares: the cluster, a git repository of N apps, the agent as a subprocess, reports.

A benchmark is an async function `measure(bench, args) -> Report`; `main()` parses the
common options, builds a `Bench` (local cluster, kube client, git server with one
repository, a temporary directory), runs `measure` inside a time limit and always cleans
up afterwards (agents stopped, namespaces deleted and waited for, git server stopped,
temporary files removed; a cluster this run started is stopped, one that was running is
left running), also on Ctrl-C, SIGTERM, timeout or failure.

Each app `NNNN` is the directory `apps/app-NNNN/` holding four objects named `app-NNNN`:
a ServiceAccount, a ConfigMap, a Service and a Deployment at 0 replicas. App names are
`b<run>-NNNN` (the app label is matched across namespaces, so every run gets its own),
namespaces `bench-<run>-<role>`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ctypes
import json
import math
import os
import re
import secrets
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.agent import AgentProcess, free_port
from tests.support.cluster import REPO_ROOT, LocalCluster, ensure_cluster, stop_cluster
from tests.support.gitserver import GitServer, WorkTree

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
FIELD_MANAGER = "gitops-agent"
APP_LABEL = "gitops-agent.io/app"
TRACKING_ANNOTATION = "gitops-agent.io/tracking-id"
RUN_LABEL = "bench.gitops-agent.io/run"  # on every namespace a benchmark creates
REPO_NAME = "bench"
WEBHOOK_SECRET_ENV = "GITOPS_BENCH_WEBHOOK_SECRET"

Obj = dict[str, Any]


class BenchError(Exception):
    """A failure whose message is meant for the user: printed without a traceback."""


# --------------------------------------------------------------------------- #
# The objects of one app
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str, name: str = "") -> str:
        root = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        return f"{root}/namespaces/{namespace}/{self.plural}" + (f"/{name}" if name else "")


SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts")
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SERVICE = Kind("v1", "Service", "services")
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
KINDS = (SERVICE_ACCOUNT, CONFIG_MAP, SERVICE, DEPLOYMENT)  # the agent's apply order
KIND_OF = {k.kind: k for k in KINDS}


def app_dir(index: int) -> str:
    return f"app-{index:04d}"


def app_objects(index: int, value: str = "v1") -> list[Obj]:
    """The four objects of app `index`, without a namespace (as in Git); `value` is the ConfigMap's data.value."""
    name = app_dir(index)
    selector = {"app.kubernetes.io/name": name}
    meta = {"name": name, "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "bench"}}
    container = {"name": "main", "image": "registry.example.com/bench:v1", "ports": [{"containerPort": 8080}]}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta), "data": {"app": name, "value": value}},
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta),
         "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta),
         "spec": {"replicas": 0, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": selector},
                               "spec": {"serviceAccountName": name, "containers": [container]}}}},
    ]


def app_files(index: int, value: str = "v1") -> dict[str, str]:
    """`apps/app-NNNN/<kind>.yaml` → YAML, one file per object."""
    return {f"apps/{app_dir(index)}/{obj['kind'].lower()}.yaml": yaml.safe_dump(obj, sort_keys=False)
            for obj in app_objects(index, value)}


def placed(obj: Obj, namespace: str, app: str) -> Obj:
    """`obj` in `namespace`, labelled and annotated the way the agent applies it."""
    kind = KIND_OF[obj["kind"]]
    meta = dict(obj["metadata"], namespace=namespace)
    meta["labels"] = {**meta.get("labels", {}), APP_LABEL: app}
    meta["annotations"] = {TRACKING_ANNOTATION: f"{app}:{kind.group}/{kind.kind}:{namespace}/{meta['name']}"}
    return {**obj, "metadata": meta}


# --------------------------------------------------------------------------- #
# A minimal Kubernetes client (aiohttp, the admin kubeconfig)
# --------------------------------------------------------------------------- #


def _named(entries: Sequence[Obj], name: str, what: str, source: Path) -> Obj:
    for entry in entries or ():
        if entry.get("name") == name:
            return dict(entry.get(what) or {})
    raise BenchError(f"{source}: no {what} named {name!r}")


def _kubeconfig(path: Path) -> tuple[str, ssl.SSLContext, dict[str, str]]:
    """Server URL, TLS context and auth headers of the current context (token or client-cert files)."""
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BenchError(f"cannot read kubeconfig {path}: {exc}") from exc
    context = _named(config.get("contexts", []), config.get("current-context", ""), "context", path)
    cluster = _named(config.get("clusters", []), context.get("cluster", ""), "cluster", path)
    user = _named(config.get("users", []), context.get("user", ""), "user", path)
    tls = ssl.create_default_context()
    if "certificate-authority-data" in cluster:
        tls.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif "certificate-authority" in cluster:
        tls.load_verify_locations(cafile=str(path.parent / cluster["certificate-authority"]))
    headers: dict[str, str] = {}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    elif user.get("client-certificate") and user.get("client-key"):
        tls.load_cert_chain(str(path.parent / user["client-certificate"]), str(path.parent / user["client-key"]))
    else:
        raise BenchError(f"{path}: the benchmarks need a token or client-certificate/client-key files")
    return str(cluster["server"]).rstrip("/"), tls, headers


class Kube:
    """Just enough of the Kubernetes API for the benchmarks, on one keep-alive aiohttp session."""

    def __init__(self, kubeconfig: Path, *, connections: int = 64) -> None:
        self.server, self._tls, self._headers = _kubeconfig(kubeconfig)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._tls, limit=self._connections)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  timeout=aiohttp.ClientTimeout(total=60))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, path: str, *, body: Any = None, query: Mapping[str, str] | None = None,
                   content_type: str = "application/json", missing_ok: bool = False) -> Obj | None:
        """One request; the decoded answer, None for a 404 when `missing_ok`, else BenchError on failure."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        try:
            async with self.session.request(method, self.server + path, data=data, params=query or {},
                                            headers=headers) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BenchError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if resp.status == 404 and missing_ok:
            return None
        if resp.status >= 300:
            raise BenchError(f"{method} {path}: HTTP {resp.status}: {text[:500]}")
        result: Obj = json.loads(text) if text else {}
        return result

    async def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        return await self.call("GET", kind.path(namespace, name), missing_ok=True)

    async def merge_patch(self, kind: Kind, namespace: str, name: str, patch: Obj, *, manager: str) -> Obj:
        result = await self.call("PATCH", kind.path(namespace, name), body=patch, query={"fieldManager": manager},
                                 content_type="application/merge-patch+json")
        assert result is not None
        return result

    async def create_namespace(self, name: str, run_id: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": {RUN_LABEL: run_id}}}
        await self.call("POST", "/api/v1/namespaces", body=body)

    async def delete_namespaces(self, names: Iterable[str], *, wait: float) -> list[str]:
        """Delete the namespaces and wait up to `wait` seconds until they are gone; returns those still there."""
        pending = list(names)
        for name in pending:
            try:
                await self.call("DELETE", f"/api/v1/namespaces/{name}", missing_ok=True)
            except BenchError as exc:
                say(f"warning: could not delete namespace {name}: {exc}")
        deadline = time.monotonic() + wait
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            pending = [n for n in pending if await self.call("GET", f"/api/v1/namespaces/{n}", missing_ok=True)]
        return pending

    async def watch_until(self, kind: Kind, namespace: str, name: str, resource_version: str,
                          done: Callable[[Obj], bool], *, within: float) -> float:
        """time.monotonic() when a watch event (after `resource_version`) shows the object satisfying `done`.

        Raises TimeoutError after `within` seconds, BenchError when the watch is refused or breaks.
        """
        query = {"watch": "1", "fieldSelector": f"metadata.name={name}", "resourceVersion": resource_version,
                 "timeoutSeconds": str(math.ceil(within) + 5)}
        no_limit = aiohttp.ClientTimeout(total=None, sock_read=within + 30)
        async with asyncio.timeout(within), self.session.get(
            self.server + kind.path(namespace), params=query, timeout=no_limit
        ) as resp:
            if resp.status != 200:
                raise BenchError(f"watch of {kind.kind} {namespace}/{name}: HTTP {resp.status}: "
                                 f"{(await resp.text())[:300]}")
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    raise BenchError(f"watch of {kind.kind} {namespace}/{name} failed: {event.get('object')}")
                if event.get("type") in ("ADDED", "MODIFIED") and done(event["object"]):
                    return time.monotonic()
        raise BenchError(f"watch of {kind.kind} {namespace}/{name} ended early")


# --------------------------------------------------------------------------- #
# The agent as a subprocess
# --------------------------------------------------------------------------- #


@dataclass(frozen=True)
class AppEntry:
    """One `[[applications]]` entry: app `name` deploys `apps/app-NNNN` into `namespace`."""

    name: str
    index: int
    namespace: str
    self_heal: bool = False


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


def _toml_value(text: str) -> str:
    """`text` if it is a TOML value (`1000`, `"5s"`, `true`), else `text` as a TOML string."""
    try:
        tomllib.loads(f"v = {text}")
    except tomllib.TOMLDecodeError:
        return json.dumps(text)
    return text


def agent_config(*, port: int, state_dir: Path, kubeconfig: Path, repo_url: str, apps: Sequence[AppEntry],
                 poll_interval: str, poll_jitter: str = "0s", agent_set: Sequence[str] = (),
                 webhook_secret_env: str = "") -> str:
    """The TOML configuration: `[agent]` (plus `agent_set` KEY=VALUE overrides) and one entry per app."""
    keys: dict[str, str] = {
        "listen": json.dumps(f"127.0.0.1:{port}"), "state_dir": json.dumps(str(state_dir)),
        "kubeconfig": json.dumps(str(kubeconfig)), "poll_interval": json.dumps(poll_interval),
        "poll_jitter": json.dumps(poll_jitter),
    }
    if webhook_secret_env:
        keys["webhook_secret_env"] = json.dumps(webhook_secret_env)
    for item in agent_set:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[a-z_]+", key.strip()):
            raise BenchError(f"--agent-set wants KEY=VALUE, not {item!r}")
        keys[key.strip()] = _toml_value(value.strip())
    lines = ["[agent]", *(f"{k} = {v}" for k, v in keys.items()), ""]
    for app in apps:
        lines += ["[[applications]]", f"name = {json.dumps(app.name)}", f"repo = {json.dumps(repo_url)}",
                  'revision = "main"', f'path = "apps/{app_dir(app.index)}"',
                  f"namespace = {json.dumps(app.namespace)}"]
        if app.self_heal:
            lines += ["[applications.sync_policy]", "self_heal = true"]
        lines.append("")
    return "\n".join(lines)


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the benchmark dies, even by SIGKILL."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class BenchAgent(AgentProcess):
    """`python -m agent run --config FILE` (as tests/support/agent.py starts it), on a keep-alive session."""

    started: float  # time.monotonic() just before the process was spawned
    _session: aiohttp.ClientSession | None = None

    @classmethod
    async def spawn(cls, config: Path, log_path: Path, port: int, env: Mapping[str, str]) -> BenchAgent:
        started = time.monotonic()
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "agent", "run", "--config", str(config), "--log-format", "json",
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, env=dict(env), cwd=REPO_ROOT,
                start_new_session=True, preexec_fn=_die_with_parent,  # Ctrl-C reaches us, not the agent
            )
        agent = cls(proc, f"http://127.0.0.1:{port}", log_path)
        agent.started = started
        return agent

    async def _send(self, method: str, path: str, body: bytes | None = None,
                    headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        if method == "POST":  # the API refuses a POST that does not say it is JSON
            headers = {"Content-Type": "application/json", **(headers or {})}
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))
        async with self._session.request(method, self.base_url + path, data=body, headers=headers) as resp:
            return resp.status, await resp.text()

    async def request(self, method: str, path: str, *, body: bytes | None = None,
                      headers: Mapping[str, str] | None = None) -> tuple[int, str]:
        try:
            return await self._send(method, path, body, headers)
        except aiohttp.ClientConnectionError:
            await asyncio.sleep(0.1)  # a crashed agent: let its exit be noticed, then say why
            self.check_alive()
            raise

    def check_alive(self) -> None:
        if self.proc.returncode is not None:
            raise BenchError(f"the agent exited with code {self.proc.returncode}; its log ends:\n{self.log_tail()}")

    async def wait_up(self, within: float = 60.0) -> float:
        """time.monotonic() when /healthz first answered."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(aiohttp.ClientConnectionError):
                if (await self._send("GET", "/healthz"))[0] == 200:
                    return time.monotonic()
            await asyncio.sleep(0.05)
        raise BenchError(f"the agent did not answer /healthz within {within:.0f}s; its log ends:\n{self.log_tail()}")

    async def applications(self) -> dict[str, Obj]:
        status, text = await self.get("/api/v1/applications")
        if status != 200:
            raise BenchError(f"GET /api/v1/applications: HTTP {status}: {text[:300]}")
        return {app["name"]: app for app in json.loads(text)}

    async def samples(self, sample_name: str) -> list[tuple[dict[str, str], float]]:
        """(labels, value) of every sample called `sample_name` in /metrics."""
        status, text = await self.get("/metrics")
        if status != 200:
            raise BenchError(f"GET /metrics: HTTP {status}")
        return [(s.labels, s.value) for family in text_string_to_metric_families(text)
                for s in family.samples if s.name == sample_name]

    async def totals(self, sample_name: str, *labels: str) -> Counter[str]:
        """A counter summed by some labels (values joined by a space), e.g. totals("...", "verb")."""
        sums: Counter[str] = Counter()
        for sample_labels, value in await self.samples(sample_name):
            sums[" ".join(sample_labels.get(label, "") for label in labels)] += int(value)
        return sums

    async def kube_requests(self, *labels: str) -> Counter[str]:
        """gitops_agent_kube_requests_total by verb, or by the labels given (verb, resource_kind, code)."""
        return await self.totals("gitops_agent_kube_requests_total", *(labels or ("verb",)))

    def stats(self) -> ProcStats:
        self.check_alive()
        return proc_stats(self.proc.pid)

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

    async def stop(self, grace: float = 15.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()


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


async def wait_apps(agent: BenchAgent, names: Sequence[str], done: Callable[[Obj], bool], *, within: float,
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


async def wait_quiet(agent: BenchAgent, *, quiet: float, within: float) -> bool:
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


# --------------------------------------------------------------------------- #
# One benchmark run: set-up and clean-up
# --------------------------------------------------------------------------- #


class Bench:
    """The cluster, a kube client, a git server with repository `bench`, a temporary directory; cleaned up on exit."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = secrets.token_hex(3)
        self.prefix = f"b{self.run_id}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"gitops-bench-{self.run_id}-"))
        self.namespaces: list[str] = []
        self.agents: list[BenchAgent] = []
        self.cluster: LocalCluster | None = None
        self.kube: Kube | None = None
        self.git: GitServer | None = None
        self.work: WorkTree | None = None
        self.failed = False

    async def __aenter__(self) -> Bench:
        try:
            say("ensuring the local cluster (scripts/local-cluster up)")
            try:
                self.cluster = await asyncio.to_thread(ensure_cluster)
            except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
                raise BenchError(f"cannot start or reach the local cluster: {exc}") from exc
            self.kube = Kube(self.cluster.kubeconfig, connections=max(64, getattr(self.args, "concurrency", 0)))
            try:
                self.git = GitServer(self.tmp / "git")
                self.git.start()
                self.git.create_repo(REPO_NAME)
                self.work = WorkTree(self.git, REPO_NAME, self.tmp / "worktree")
            except (RuntimeError, OSError) as exc:
                raise BenchError(f"cannot set up the git server: {exc}") from exc
        except BaseException as exc:
            await self.__aexit__(type(exc), exc, None)
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        self.failed = exc_type is not None and not issubclass(exc_type, (asyncio.CancelledError, KeyboardInterrupt))
        for agent in self.agents:
            await _quietly("stop the agent", agent.stop())
        if self.kube is not None and self.namespaces:
            say(f"deleting namespace(s) {', '.join(self.namespaces)}")
            left = await _quietly("delete namespaces", self.kube.delete_namespaces(
                self.namespaces, wait=getattr(self.args, "cleanup_wait", 120.0)))
            if left:
                say(f"warning: still terminating (the cluster deletes them in the background): {', '.join(left)}")
        if self.kube is not None:
            await _quietly("close the kube client", self.kube.close())
        if self.git is not None:
            self.git.stop()
        if self.failed or getattr(self.args, "keep_tmp", False):
            say(f"kept {self.tmp} (agent logs, config, repository)")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)
        if self.cluster is not None and self.cluster.started_here and not getattr(self.args, "keep_cluster", False):
            say("stopping the local cluster this run started")
            await asyncio.to_thread(stop_cluster)

    # -- accessors that fail clearly before set-up -------------------------- #

    @property
    def k(self) -> Kube:
        if self.kube is None:
            raise BenchError("no kube client yet")
        return self.kube

    @property
    def repo(self) -> WorkTree:
        if self.work is None:
            raise BenchError("no git repository yet")
        return self.work

    @property
    def repo_url(self) -> str:
        assert self.git is not None
        return self.git.url(REPO_NAME)

    # -- set-up steps ---------------------------------------------------------- #

    def app_name(self, index: int) -> str:
        return f"{self.prefix}-{index:04d}"

    async def commit_apps(self, count: int, value: str = "v1") -> str:
        """Write apps 1..count to the repository, commit and push; returns the commit SHA."""
        files: dict[str, str | None] = {}
        for index in range(1, count + 1):
            files.update(app_files(index, value))
        return await asyncio.to_thread(self.repo.commit_and_push, files, f"{count} apps")

    async def namespace(self, role: str) -> str:
        name = f"bench-{self.run_id}-{role}"
        await self.k.create_namespace(name, self.run_id)
        self.namespaces.append(name)
        return name

    def apps(self, count: int, namespace: str, *, self_heal: bool = False) -> list[AppEntry]:
        return [AppEntry(self.app_name(i), i, namespace, self_heal) for i in range(1, count + 1)]

    async def start_agent(self, apps: Sequence[AppEntry], *, poll_interval: str, poll_jitter: str = "0s",
                          webhook_secret: str = "") -> BenchAgent:
        """Write the config and spawn the agent (with the cluster's kustomize on PATH); it is stopped at exit."""
        assert self.cluster is not None
        port = free_port()
        config = self.tmp / f"agent-{port}.toml"
        config.write_text(agent_config(
            port=port, state_dir=self.tmp / f"state-{port}", kubeconfig=self.cluster.kubeconfig,
            repo_url=self.repo_url, apps=apps, poll_interval=poll_interval, poll_jitter=poll_jitter,
            agent_set=getattr(self.args, "agent_set", None) or (),
            webhook_secret_env=WEBHOOK_SECRET_ENV if webhook_secret else ""))
        env = dict(os.environ, PATH=f"{self.cluster.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        if webhook_secret:
            env[WEBHOOK_SECRET_ENV] = webhook_secret
        agent = await BenchAgent.spawn(config, self.tmp / f"agent-{port}.log", port, env)
        self.agents.append(agent)
        return agent


async def _quietly(what: str, step: Awaitable[Any]) -> Any:
    """Run one clean-up step; a failure is reported and does not stop the others."""
    try:
        return await step
    except Exception as exc:
        say(f"warning: could not {what}: {type(exc).__name__}: {exc}")
        return None


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- #
# Numbers, tables and RESULTS.md
# --------------------------------------------------------------------------- #


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), interpolated between the two closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def by_verb(counts: Mapping[str, int], *, limit: int = 12) -> str:
    """`patch 40, get 10` (largest first, at most `limit` entries and a sum of the rest) or `none`."""
    items = sorted(((v, n) for v, n in counts.items() if n), key=lambda item: -item[1])
    text = ", ".join(f"{verb} {n}" for verb, n in items[:limit])
    if len(items) > limit:
        text += f", {len(items) - limit} more: {sum(n for _, n in items[limit:])}"
    return text or "none"


def delta(after: Mapping[str, int], before: Mapping[str, int]) -> Counter[str]:
    return Counter({key: after.get(key, 0) - before.get(key, 0) for key in set(after) | set(before)})


@dataclass
class Report:
    """Rows of (metric, value, target), printed as a table and optionally recorded in RESULTS.md."""

    title: str
    key: str  # the RESULTS.md section, e.g. "cold_sync --apps 100"
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, metric: str, value: str, target: str = "") -> None:
        self.rows.append((metric, value, target))

    def text(self) -> str:
        header = ("metric", "value", "target")
        widths = [max(len(row[i]) for row in [header, *self.rows]) for i in range(3)]
        lines = [self.title, *("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                               for row in [header, tuple("-" * w for w in widths), *self.rows])]
        return "\n".join(lines + [f"note: {note}" for note in self.notes])

    def markdown(self, command: str) -> str:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [f"## {self.key}", "", f"{self.title}. Recorded {when} on {machine()['cores']} cores; rerun with:",
                 "", "```sh", command, "```", "", "| metric | value | target |", "|---|---|---|"]
        lines += [f"| {m} | {v} | {t} |" for m, v, t in self.rows]
        lines += [""] + [f"- {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def machine() -> dict[str, str]:
    """Cores (`nproc`), Python, and the cluster versions pinned in scripts/local-cluster."""
    cores = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip() or "?"
    script = (REPO_ROOT / "scripts" / "local-cluster").read_text()
    versions = dict(re.findall(r'^(K8S|ETCD|KWOK|KUSTOMIZE)_VERSION = "([^"]+)"', script, re.M))
    return {"cores": cores, "python": sys.version.split()[0], "kubernetes": versions.get("K8S", "?"),
            "etcd": versions.get("ETCD", "?"), "kwok": versions.get("KWOK", "?"),
            "kustomize": versions.get("KUSTOMIZE", "?")}


_FAST_KUBE = "--agent-set kube_qps=500 --agent-set kube_burst=1000"  # else the token bucket is the bound
FULL_RUN = (  # the benchmarks at full size, as the header of RESULTS.md lists them
    f"python -m bench.cold_sync --apps 100 {_FAST_KUBE} --record",
    f"python -m bench.cold_sync --apps 500 {_FAST_KUBE} --record",
    f"python -m bench.cold_sync --apps 1000 {_FAST_KUBE} --record",
    f"python -m bench.noop_cycle --apps 1000 --trigger poll --poll 5 {_FAST_KUBE} --record",
    "python -m bench.drift --samples 20 --record",
    "python -m bench.push_to_applied --samples 20 --record",
    "python -m bench.git_requests --apps 100 --interval 2s --seconds 10 --record",
)


def results_header(date: str = "") -> str:
    """The head of RESULTS.md: machine, versions, date of the latest recording, the commands of a full run."""
    info = machine()
    when = date or datetime.now(UTC).strftime("%Y-%m-%d")
    commands = "\n".join(FULL_RUN)
    return (
        "# Benchmark results\n\n"
        "Numbers from `python -m bench.<name> ... --record` (see [README.md](README.md)), run from the\n"
        "repository root against the local cluster; each section names the command that produced it.\n"
        "Machine and versions of the latest recording:\n\n"
        "| | |\n|---|---|\n"
        f"| cores (`nproc`) | {info['cores']} |\n| Python | {info['python']} |\n"
        f"| kube-apiserver, kubectl | {info['kubernetes']} |\n| etcd | {info['etcd']} |\n"
        f"| kwok | {info['kwok']} |\n| kustomize | {info['kustomize']} |\n| date | {when} |\n\n"
        f"A full run (one command after another, on a quiet machine):\n\n```sh\n{commands}\n```\n"
    )


_BEGIN, _END = "<!-- bench:begin {} -->", "<!-- bench:end {} -->"


def record(report: Report, command: str, path: Path = RESULTS) -> None:
    """Replace (or append) the report's section in RESULTS.md and refresh the header."""
    text = path.read_text() if path.exists() else ""
    marker = text.find("<!-- bench:begin ")
    body = text[marker:] if marker >= 0 else ""
    begin, end = _BEGIN.format(report.key), _END.format(report.key)
    section = f"{begin}\n{report.markdown(command)}{end}\n"
    if begin in body and end in body:
        start, stop = body.index(begin), body.index(end) + len(end) + 1
        body = body[:start] + section + body[stop:]
    else:
        body = (body.rstrip() + "\n\n" if body.strip() else "") + section
    path.write_text(results_header() + "\n" + body)


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def parser(prog: str, description: str, *, timeout: float) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark takes."""
    result = argparse.ArgumentParser(prog=f"python -m bench.{prog}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = result.add_argument_group("common options")
    common.add_argument("--record", action="store_true", help="write the numbers into bench/RESULTS.md")
    common.add_argument("--timeout", type=float, default=timeout, metavar="SECONDS",
                        help="give up after this long, clean-up not included (default: %(default)s)")
    common.add_argument("--agent-set", action="append", default=[], metavar="KEY=VALUE",
                        help="an extra [agent] key of the agent's config, e.g. kube_qps=500 (repeatable)")
    common.add_argument("--cleanup-wait", type=float, default=120.0, metavar="SECONDS",
                        help="how long to wait for the namespaces to be deleted at the end (default: %(default)s)")
    common.add_argument("--keep-tmp", action="store_true",
                        help="keep the temporary directory (agent config and logs, repository); kept on failure")
    common.add_argument("--keep-cluster", action="store_true",
                        help="do not stop a local cluster that this run had to start")
    return result


Measure = Callable[[Bench, argparse.Namespace], Awaitable[Report]]


async def _run(measure: Measure, args: argparse.Namespace) -> Report:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    async with Bench(args) as bench:
        try:
            async with asyncio.timeout(args.timeout):
                return await measure(bench, args)
        except TimeoutError as exc:
            raise BenchError(f"gave up after --timeout {args.timeout:.0f}s") from exc


def main(prog: str, measure: Measure, args: argparse.Namespace) -> int:
    """Run `measure` with set-up and clean-up; print the table; record it with --record. Returns the exit code."""
    if not (REPO_ROOT / "agent").is_dir() or Path.cwd().resolve() != REPO_ROOT:
        print(f"error: run from the repository root: cd {REPO_ROOT} && python -m bench.{prog} ...", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(_run(measure, args))
    except KeyboardInterrupt:
        print("interrupted (cleaned up)", file=sys.stderr)
        return 130
    except asyncio.CancelledError:
        print("terminated (cleaned up)", file=sys.stderr)
        return 143
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.text())
    if args.record:
        argv = [a for a in sys.argv[1:] if a != "--record"]
        record(report, shlex.join(["python", "-m", f"bench.{prog}", *argv]))
        print(f"recorded in {RESULTS.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0
