"""One benchmark run: the options every benchmark takes, set-up, clean-up, and the exit code.

A benchmark is an async function `measure(bench, args) -> Report`; `main()` builds a `Bench`
(local cluster, kube client, git server with one repository, a temporary directory), runs
`measure` inside a time limit and always cleans up afterwards (agents stopped, namespaces
deleted and waited for, git server stopped, temporary files removed; a cluster this run
started is stopped, one that was running is left running), also on Ctrl-C, SIGTERM, timeout
or failure. App names are `b<run>-NNNN` (the app label is matched across namespaces, so
every run gets its own), namespaces `bench-<run>-<role>`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.agents import AppEntry, agent_config
from bench.apps import app_files
from bench.console import BenchError, say
from bench.kube import Kube
from bench.report import RESULTS, Report, record
from tests.support.agent import AgentFailure, AgentProcess
from tests.support.cluster import REPO_ROOT, LocalCluster, ensure_cluster, stop_cluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.ports import free_port

RUN_LABEL = "bench.gitops-agent.io/run"  # on every namespace a benchmark creates
REPO_NAME = "bench"
WEBHOOK_SECRET_ENV = "GITOPS_BENCH_WEBHOOK_SECRET"


class Bench:
    """The cluster, a kube client, a git server with repository `bench`, a temporary directory; cleaned up on exit."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_id = secrets.token_hex(3)
        self.prefix = f"b{self.run_id}"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"gitops-bench-{self.run_id}-"))
        self.namespaces: list[str] = []
        self.agents: list[AgentProcess] = []
        self.cluster: LocalCluster | None = None
        self.kube: Kube | None = None
        self.git: GitServer | None = None
        self.work: WorkTree | None = None
        self.failed = False

    async def __aenter__(self) -> Bench:
        try:
            say("ensuring the local cluster (scripts/local-cluster up)")
            try:
                self.cluster = await asyncio.to_thread(ensure_cluster, size=getattr(self.args, "cluster_size", ""))
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
        await self.k.create_namespace(name, {RUN_LABEL: self.run_id})
        self.namespaces.append(name)
        return name

    def apps(self, count: int, namespace: str, *, self_heal: bool = False) -> list[AppEntry]:
        return [AppEntry(self.app_name(i), i, namespace, self_heal) for i in range(1, count + 1)]

    async def start_agent(self, apps: Sequence[AppEntry], *, poll_interval: str, poll_jitter: str = "0s",
                          webhook_secret: str = "", clusters: Mapping[str, Path] | None = None) -> AgentProcess:
        """Write the config and spawn the agent (with the cluster's kustomize on PATH); it is stopped at exit.
        `clusters`: more clusters for `[[clusters]]`, name → kubeconfig."""
        assert self.cluster is not None
        port = free_port()
        config = self.tmp / f"agent-{port}.toml"
        config.write_text(agent_config(
            port=port, state_dir=self.tmp / f"state-{port}", kubeconfig=self.cluster.kubeconfig,
            repo_url=self.repo_url, apps=apps, poll_interval=poll_interval, poll_jitter=poll_jitter,
            agent_set=getattr(self.args, "agent_set", None) or (),
            webhook_secret_env=WEBHOOK_SECRET_ENV if webhook_secret else "", clusters=clusters))
        env = dict(os.environ, PATH=f"{self.cluster.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
        if webhook_secret:
            env[WEBHOOK_SECRET_ENV] = webhook_secret
        agent = await AgentProcess.spawn(config, port=port, log_path=self.tmp / f"agent-{port}.log", env=env,
                                         detached=True, keep_alive=True)
        self.agents.append(agent)
        if getattr(self.args, "py_spy", None):
            await self._profile(agent, Path(self.args.py_spy))
        return agent

    async def _profile(self, agent: AgentProcess, output: Path) -> None:
        """Sample the agent with py-spy (`pip install py-spy`) until it exits: collapsed stacks in `output`."""
        py_spy = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
        if py_spy is None:
            raise BenchError("--py-spy needs py-spy on PATH or next to this Python (pip install py-spy)")
        say(f"profiling the agent (pid {agent.proc.pid}) into {output}")
        await asyncio.create_subprocess_exec(
            py_spy, "record", "--pid", str(agent.proc.pid), "--rate", "100", "--format", "raw",
            "--output", str(output), "--nonblocking", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def _quietly(what: str, step: Awaitable[Any]) -> Any:
    """Run one clean-up step; a failure is reported and does not stop the others."""
    try:
        return await step
    except Exception as exc:
        say(f"warning: could not {what}: {type(exc).__name__}: {exc}")
        return None


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
    common.add_argument("--py-spy", metavar="FILE",
                        help="profile the agent with py-spy (pip install py-spy): collapsed stacks into FILE")
    common.add_argument("--cluster-size", choices=("default", "large"), default="",
                        help="`local-cluster up --size`: large for thousands of apps (a running cluster of "
                             "another size is replaced; default: the size the tests use)")
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
    except (BenchError, AgentFailure) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(report.text())
    if args.record:
        argv = [a for a in sys.argv[1:] if a != "--record"]
        record(report, shlex.join(["python", "-m", f"bench.{prog}", *argv]))
        print(f"recorded in {RESULTS.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0
