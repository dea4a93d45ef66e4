"""The controller's concurrency guarantees, against real components (issue 9).

Coalescing refreshes, one operation at a time per app, and the `max_concurrent_reconciles`,
`max_concurrent_fetches` and `max_concurrent_renders` bounds are checked on the real controller
that `build_controller` wires (real git server, real kustomize, real API server). The only
instrument is a subclass of the agent's own Reconciler that records when each reconcile runs and
can hold reconciles in flight until the test releases them, so that "while one is running" is a
fact rather than a race. Git requests in flight are counted by the git server itself, kustomize
builds by a wrapper script around the real binary.

The Kubernetes client's 429 handling is checked against kube-apiserver's own API Priority and
Fairness: a PriorityLevelConfiguration with one concurrency share that rejects instead of
queueing, and a FlowSchema sending one test ServiceAccount there. Its token-bucket pacing is
measured on real requests too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent import runtime
from agent.config import AppSpec, RenderSettings
from agent.controller import Controller, Outcome, Reconciler
from agent.controller.reconcile import ReconcileResult
from agent.kube import KubeClient
from agent.kube.client import KubeRequest, load_configuration
from agent.kube.ratelimit import AdaptiveBucket, TokenBucket
from agent.metrics import Metrics
from agent.model import OperationRequest, SyncPolicy
from tests.integration.helpers import configmap, eventually, settings_for
from tests.support.cluster import LocalCluster
from tests.support.gitserver import GitServer, WorkTree
from tests.support.metrics import sample_value

WITHIN = 20.0  # seconds any awaited condition may take before the test fails


async def until(condition: Callable[[], bool], what: str, *, within: float = WITHIN) -> None:
    """Poll a condition on in-process state every 10 ms."""
    await eventually(condition, within=within, interval=0.01, what=what)


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


# ----------------------------------------------------------------------------- the probe


class Probe:
    """Records every reconcile (per app and in total) and can hold them in flight."""

    def __init__(self) -> None:
        self.in_flight: Counter[str] = Counter()
        self.started: Counter[str] = Counter()
        self.finished: Counter[str] = Counter()
        self.intervals: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)
        self.overlaps: list[str] = []  # an app whose reconcile started while another of it ran
        self.total = 0
        self.max_total = 0
        self._gate = asyncio.Event()
        self._gate.set()

    def hold(self) -> None:
        """Reconciles that start from now on wait (counted as running) until `release`."""
        self._gate.clear()

    def release(self) -> None:
        self._gate.set()

    @contextlib.asynccontextmanager
    async def running(self, app: str) -> AsyncIterator[None]:
        started = time.monotonic()
        if self.in_flight[app]:
            self.overlaps.append(app)
        self.in_flight[app] += 1
        self.started[app] += 1
        self.total += 1
        self.max_total = max(self.max_total, self.total)
        try:
            await self._gate.wait()
            yield
        finally:
            self.in_flight[app] -= 1
            self.total -= 1
            self.finished[app] += 1
            self.intervals[app].append((started, time.monotonic()))

    def assert_one_at_a_time(self) -> None:
        assert not self.overlaps, f"reconciles of one app overlapped: {self.overlaps}"
        for app, spans in self.intervals.items():
            spans = sorted(spans)
            for (_, end), (start, _) in itertools.pairwise(spans):
                assert start >= end, f"{app}: a reconcile started at {start} before the previous ended at {end}"


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[Probe]:
    """Makes build_controller use a Reconciler that reports to (and can be held by) the probe."""
    probe = Probe()

    class ProbedReconciler(Reconciler):
        async def reconcile(self, app: AppSpec, *args: Any, **kwargs: Any) -> Outcome:
            async with probe.running(app.name):
                return await super().reconcile(app, *args, **kwargs)

    monkeypatch.setattr(runtime, "Reconciler", ProbedReconciler)
    yield probe
    probe.release()


@dataclass
class Agent:
    controller: Controller
    metrics: Metrics
    stopped: bool = False

    async def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            await self.controller.stop(drain_timeout=5.0)

    def reconciles(self, app: str) -> int:
        """gitops_agent_reconcile_total of one app, every outcome."""
        return int(sum(sample_value(self.metrics, "gitops_agent_reconcile_total", name=app, result=result) or 0
                       for result in ("synced", "compared", "error")))


@pytest.fixture
async def make_agent(tmp_path: Path, cluster: LocalCluster, kube: KubeClient, probe: Probe,
                     namespace: str) -> AsyncIterator[Callable[..., Agent]]:
    """The real controller (source, renderer, reconciler, state) for `apps`, with `[agent]` overrides.

    Controllers are stopped before the test's namespace is deleted (this fixture depends on it).
    """
    agents: list[Agent] = []

    def make(apps: list[AppSpec], *, poll_interval: float = 60.0, **agent: Any) -> Agent:
        settings = settings_for(apps, state_dir=tmp_path / f"state-{len(agents)}", kubeconfig=cluster.kubeconfig,
                                poll_interval=poll_interval)
        settings = replace(settings, agent=replace(settings.agent, **agent))
        metrics = Metrics()
        made = Agent(runtime.build_controller(settings, kube, metrics), metrics)
        agents.append(made)
        return made

    yield make
    probe.release()
    for made in agents:
        await made.stop()


def app(name: str, repo: str, path: str, namespace: str, *, automated: bool = True) -> AppSpec:
    return AppSpec(name=name, repo=repo, revision="main", path=path, namespace=namespace,
                   sync_policy=SyncPolicy(automated=automated))


def assert_no_errors(agent: Agent, names: list[str]) -> None:
    for name in names:
        status = agent.controller.status(name)
        assert status is not None and not status.conditions, f"{name}: {status}"


# ----------------------------------------------------------------------------- coalescing


async def test_refresh_requests_during_a_reconcile_coalesce_into_one_more(
    make_agent: Callable[..., Agent], probe: Probe, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    repo.commit_and_push({"app/cm.yaml": configmap("coalesce", {"k": "1"})}, "one")
    url = git_server.url(repo.name)
    name = unique("coalesce")
    # Not automated: reconciles only compare, so no write of ours can wake the app again.
    agent = make_agent([app(name, url, "app", namespace, automated=False)], poll_interval=60.0)
    probe.hold()
    agent.controller.start()
    await until(lambda: probe.in_flight[name] == 1, "the first reconcile to run")

    for _ in range(20):  # refreshes (API, CLI) and webhook pushes, while that reconcile runs
        assert agent.controller.request_refresh(name)
        assert agent.controller.refresh_repository([url], "refs/heads/main") == [name]
        await asyncio.sleep(0)
    await asyncio.sleep(0.05)
    assert probe.started[name] == 1, "nothing else may start while the reconcile runs"

    probe.release()
    await until(lambda: agent.reconciles(name) == 2, "the coalesced reconcile")
    # A third would start within milliseconds if requests had queued up; the next poll is 60 s away.
    await asyncio.sleep(0.3)
    assert probe.started[name] == 2
    assert agent.reconciles(name) == 2
    assert_no_errors(agent, [name])

    agent.controller.request_refresh(name)  # and the app still answers the next request
    await until(lambda: agent.reconciles(name) == 3, "a reconcile for a later refresh")
    probe.assert_one_at_a_time()


# ----------------------------------------------------------------------------- one operation per app


async def test_one_operation_at_a_time_per_app_but_apps_in_parallel(
    make_agent: Callable[..., Agent], probe: Probe, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    repo.commit_and_push({"a/cm.yaml": configmap("one-a", {"k": "1"}), "b/cm.yaml": configmap("one-b", {"k": "1"})},
                         "two apps")
    url = git_server.url(repo.name)
    first, second = unique("one-a"), unique("one-b")
    # Polling every 50 ms: the apps' own loops keep reconciling while the requests below come in.
    agent = make_agent([app(first, url, "a", namespace), app(second, url, "b", namespace)], poll_interval=0.05)
    controller = agent.controller
    probe.hold()
    controller.start()
    # Both apps' reconciles are in flight together: the per-app lock is not a global one.
    await until(lambda: probe.in_flight[first] == 1 and probe.in_flight[second] == 1, "both apps to reconcile")

    operations: list[asyncio.Task[ReconcileResult | None]] = []
    for name in (first, second):
        operations += [asyncio.create_task(controller.sync_now(name, OperationRequest())) for _ in range(3)]
        operations += [asyncio.create_task(controller.sync_now(name, OperationRequest(dry_run=True)))]
        operations += [asyncio.create_task(controller.reconcile_once(name)) for _ in range(2)]
        for _ in range(5):
            controller.request_refresh(name)
    await asyncio.sleep(0.1)
    assert probe.started == Counter({first: 1, second: 1}), "a second operation of an app started"

    probe.release()
    results = await asyncio.wait_for(asyncio.gather(*operations), timeout=WITHIN)
    assert all(result is not None and result.error is None for result in results), results
    manual = [result for result in results[:3] + results[6:9] if result is not None]
    assert all(result.sync is not None for result in manual), "a manual sync did not sync"
    # Six operations per app, the first reconcile, and polls on top.
    await until(lambda: min(probe.finished[first], probe.finished[second]) >= 10, "more polls")
    await agent.stop()
    probe.assert_one_at_a_time()
    assert_no_errors(agent, [first, second])


# ----------------------------------------------------------------------------- semaphores


async def test_max_concurrent_reconciles_is_reached_and_never_exceeded(
    make_agent: Callable[..., Agent], probe: Probe, git_server: GitServer, repo: WorkTree, namespace: str
) -> None:
    count, limit = 12, 3
    repo.commit_and_push({f"apps/a{i}/cm.yaml": configmap(f"sem-{i}", {"i": str(i)}) for i in range(count)},
                         "twelve apps")
    url = git_server.url(repo.name)
    prefix = unique("sem")
    names = [f"{prefix}-{i}" for i in range(count)]
    agent = make_agent([app(name, url, f"apps/a{i}", namespace) for i, name in enumerate(names)],
                       max_concurrent_reconciles=limit)
    probe.hold()
    agent.controller.start()
    await until(lambda: probe.total >= limit, f"{limit} reconciles in flight")
    await asyncio.sleep(0.2)  # every other app's loop is waiting for a slot meanwhile
    assert probe.total == limit and sum(probe.started.values()) == limit

    probe.release()
    await until(lambda: all(agent.reconciles(name) >= 1 for name in names), "every app to reconcile")
    assert probe.max_total == limit
    assert_no_errors(agent, names)


async def test_max_concurrent_fetches_bounds_git_requests_in_flight(
    make_agent: Callable[..., Agent], probe: Probe, tmp_path: Path, namespace: str
) -> None:
    count, limit = 5, 2
    with GitServer(tmp_path / "slow-git") as server:
        names, apps = [], []
        for i in range(count):  # one repository per app: fetches of one repository never overlap anyway
            repo_name = f"fetch-{i}"
            server.create_repo(repo_name)
            work = WorkTree(server, repo_name, tmp_path / f"work-{i}")
            work.commit_and_push({"app/cm.yaml": configmap(f"fetch-{i}", {"i": str(i)})}, "one")
            names.append(unique(f"fetch-{i}"))
            apps.append(app(names[-1], server.url(repo_name), "app", namespace))
        server.reset_counts()
        server.delay = 0.15  # each request is held 150 ms, so requests sent together overlap at the server
        agent = make_agent(apps, max_concurrent_fetches=limit, max_concurrent_reconciles=count)
        agent.controller.start()
        await until(lambda: all(agent.reconciles(name) >= 1 for name in names), "every app to reconcile")
        assert_no_errors(agent, names)
        # Each app asked for its refs and fetched its commit: at least two requests per repository.
        assert server.count(kind="ls-remote") + server.count(kind="ls-refs") >= count
        assert len(server.records()) >= 2 * count
        assert server.max_concurrent == limit, f"git requests in flight at once: {server.max_concurrent}"
    assert probe.max_total > limit, "reconciles were not the bound (the test would prove nothing)"


KUSTOMIZE_WRAPPER = """#!/bin/sh
# The real kustomize, logging when each build starts and ends (nanoseconds) and taking 300 ms longer.
echo "start $(date +%s%N)" >> {log}
sleep 0.3
{kustomize} "$@"
status=$?
echo "end $(date +%s%N)" >> {log}
exit $status
"""


def most_at_once(log: Path) -> tuple[int, int]:
    """(the most builds running at once, builds) from the wrapper's log."""
    events = []
    for line in log.read_text().splitlines():
        what, stamp = line.split()
        events.append((int(stamp), 0 if what == "end" else 1))  # at equal times an end comes first
    running = most = 0
    for _, starts in sorted(events):
        running += 1 if starts else -1
        most = max(most, running)
    return most, sum(1 for _, starts in events if starts)


async def test_max_concurrent_renders_bounds_kustomize_builds(
    make_agent: Callable[..., Agent], probe: Probe, cluster: LocalCluster, git_server: GitServer, repo: WorkTree,
    namespace: str, tmp_path: Path
) -> None:
    count, limit = 6, 2
    files = {}
    for i in range(count):
        files[f"apps/k{i}/kustomization.yaml"] = "resources:\n- cm.yaml\n"
        files[f"apps/k{i}/cm.yaml"] = configmap(f"render-{i}", {"i": str(i)})
    repo.commit_and_push(files, "six kustomizations")
    log = tmp_path / "builds.log"
    wrapper = tmp_path / "kustomize"
    wrapper.write_text(KUSTOMIZE_WRAPPER.format(log=log, kustomize=cluster.bin_dir / "kustomize"))
    wrapper.chmod(0o755)
    prefix = unique("render")
    names = [f"{prefix}-{i}" for i in range(count)]
    url = git_server.url(repo.name)
    agent = make_agent([app(name, url, f"apps/k{i}", namespace) for i, name in enumerate(names)],
                       max_concurrent_reconciles=count,
                       render=RenderSettings(kustomize_path=str(wrapper), max_concurrent_renders=limit))
    agent.controller.start()
    await until(lambda: all(agent.reconciles(name) >= 1 for name in names), "every app to reconcile")
    assert_no_errors(agent, names)
    most, builds = most_at_once(log)
    assert builds == count
    assert most == limit, f"kustomize builds at once: {most}"
    assert probe.max_total > limit, "reconciles were not the bound (the test would prove nothing)"


# ----------------------------------------------------------------------------- the Kubernetes client


@dataclass(frozen=True)
class Send:
    task: str
    started: float
    ended: float
    status: int
    retry_after: float


class RecordingClient(KubeClient):
    """The agent's client, recording every attempt `request` makes: when, what came back, the Retry-After."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sends: list[Send] = []
        self.throttled = asyncio.Event()

    async def _send(self, *args: Any, **kwargs: Any) -> tuple[int, bytes, float]:
        started = time.monotonic()
        status, payload, retry_after = await super()._send(*args, **kwargs)
        task = asyncio.current_task()
        self.sends.append(Send(task.get_name() if task else "", started, time.monotonic(), status, retry_after))
        if status == 429:
            self.throttled.set()
        return status, payload, retry_after


@dataclass
class Throttled:
    """A ServiceAccount whose requests kube-apiserver's APF admits at most ~3 at a time, rejecting the rest."""

    namespace: str
    kubeconfig: Path
    path: str  # what it may read: the configmaps of its namespace


FLOWCONTROL = "/apis/flowcontrol.apiserver.k8s.io/v1"


@pytest.fixture
async def throttled(kube: KubeClient, cluster: LocalCluster, namespace: str,
                    tmp_path: Path) -> AsyncIterator[Throttled]:
    sa = "flood"
    await kube.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts",
                       body={"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": sa}})
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}"
    await kube.request("POST", f"{rbac}/roles", body={
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "read-configmaps"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]})
    await kube.request("POST", f"{rbac}/rolebindings", body={
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "read-configmaps"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "read-configmaps"},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": namespace}]})
    token = await kube.request("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{sa}/token", body={
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {"expirationSeconds": 600}})
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["users"] = [{"name": sa, "user": {"token": token["status"]["token"]}}]
    config["contexts"] = [{"name": sa, "context": {"cluster": config["clusters"][0]["name"], "user": sa}}]
    config["current-context"] = sa
    kubeconfig = tmp_path / "flood.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))

    # Unique cluster-scoped names; precedence 8500 wins over `service-accounts` (9000) and the
    # catch-all (10000), and the objects are deleted whatever happens.
    level = unique("gitops-agent-test-reject")
    try:
        await kube.request("POST", f"{FLOWCONTROL}/prioritylevelconfigurations", body={
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "PriorityLevelConfiguration",
            "metadata": {"name": level},
            "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Reject"}}}})
        await kube.request("POST", f"{FLOWCONTROL}/flowschemas", body={
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", "metadata": {"name": level},
            "spec": {"priorityLevelConfiguration": {"name": level}, "matchingPrecedence": 8500,
                     "distinguisherMethod": {"type": "ByUser"},
                     "rules": [{"subjects": [{"kind": "ServiceAccount",
                                              "serviceAccount": {"name": sa, "namespace": namespace}}],
                                "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"],
                                                   "namespaces": ["*"], "clusterScope": True}],
                                "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}]}]}})
        yield Throttled(namespace, kubeconfig, f"/api/v1/namespaces/{namespace}/configmaps")
    finally:
        for plural in ("flowschemas", "prioritylevelconfigurations"):
            with contextlib.suppress(Exception):
                await kube.request("DELETE", f"{FLOWCONTROL}/{plural}/{level}")


async def test_429_from_the_api_server_is_retried_after_its_retry_after(throttled: Throttled) -> None:
    observed: Counter[int] = Counter()
    client = RecordingClient(await load_configuration(str(throttled.kubeconfig)),
                             observer=lambda request: observed.update([request.code]))
    hog = await KubeClient.connect(str(throttled.kubeconfig))
    stop = asyncio.Event()
    hog_statuses: Counter[int] = Counter()

    async def flood() -> None:  # single attempts, no retries: keeps the priority level's seats busy
        while not stop.is_set():
            status, _, _ = await hog._send("GET", throttled.path, None, None, "application/json", "ConfigMap", None)
            hog_statuses[status] += 1

    flooders = [asyncio.create_task(flood()) for _ in range(10)]
    requests: list[asyncio.Task[Any]] = []
    try:
        await until(lambda: hog_statuses[429] > 0, "the API server to answer 429 (APF Reject)", within=10)
        for round_ in range(25):  # the client's requests, into the flood, until one of them is refused
            requests += [asyncio.create_task(client.request("GET", throttled.path, kind="ConfigMap"),
                                             name=f"request-{round_}-{i}") for i in range(2)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.throttled.wait(), timeout=0.05)
            if client.throttled.is_set():
                break
        stop.set()  # the flood ends at once; the refused requests retry after the server's Retry-After
        await asyncio.gather(*flooders)
        started = time.monotonic()
        answers = await asyncio.wait_for(asyncio.gather(*requests), timeout=15)
        waited = time.monotonic() - started
    finally:
        stop.set()
        for task in [*flooders, *requests]:
            task.cancel()
        await client.close()
        await hog.close()

    assert observed[429] >= 1, f"no 429 for the client's requests: {observed}"
    assert all("items" in answer for answer in answers), "every request must end with the list"
    by_task: defaultdict[str, list[Send]] = defaultdict(list)
    for send in client.sends:
        by_task[send.task].append(send)
    retried = 0
    for request, sends in by_task.items():
        sends.sort(key=lambda s: s.started)
        assert sends[-1].status == 200, f"{request}: {sends}"
        for refused, again in itertools.pairwise(sends):
            assert refused.status == 429, f"{request}: only a 429 is retried: {sends}"
            assert refused.retry_after >= 1.0, "kube-apiserver asks for at least one second"
            gap = again.started - refused.ended
            assert gap >= refused.retry_after - 0.005, f"{request}: retried {gap:.3f}s after a Retry-After of " \
                f"{refused.retry_after}s"
            retried += 1
    assert retried == observed[429] >= 1
    assert waited < 10


async def test_the_adaptive_rate_halves_when_the_api_server_answers_429(throttled: Throttled) -> None:
    """kube_qps = 0: requests queued behind the rate speed it up; APF's 429s halve it; all are answered."""
    changes: list[tuple[float, float]] = []  # (rate before, rate after) at each window's decision

    class Recorded(AdaptiveBucket):
        def _roll(self) -> None:
            before = self.rate
            super()._roll()
            if self.rate != before:
                changes.append((before, self.rate))

    limiter = Recorded(burst=5, name="flood")
    observed: Counter[int] = Counter()

    def observe(request: KubeRequest) -> None:
        observed.update([request.code])

    client = await KubeClient.connect(str(throttled.kubeconfig), limiter=limiter, observer=observe)
    hog = await KubeClient.connect(str(throttled.kubeconfig))
    stop = asyncio.Event()

    async def flood() -> None:  # single attempts, no retries: keeps the priority level's seats busy
        while not stop.is_set():
            await hog._send("GET", throttled.path, None, None, "application/json", "ConfigMap", None)

    async def reads(count: int) -> list[Any]:
        return await asyncio.gather(*(client.request("GET", throttled.path, kind="ConfigMap") for _ in range(count)))

    try:
        await reads(60)  # no flood yet: the requests wait for the rate, which grows
        # A small priority level may already have answered 429 to those: only a decrease from here counts.
        decreases, mark = limiter.decreases, len(changes)
        flooders = [asyncio.create_task(flood()) for _ in range(10)]
        requests = asyncio.create_task(reads(60))
        await until(lambda: limiter.decreases > decreases, "the adaptive rate to go down after a 429", within=15)
        stop.set()
        await asyncio.gather(*flooders)
        answers = await asyncio.wait_for(requests, timeout=30)
    finally:
        stop.set()
        await client.close()
        await hog.close()

    # Growth is judged on the decisions: a 429 from the small priority level may have halved it again since.
    assert any(after > before for before, after in changes[:mark]), f"the rate did not grow: {changes[:mark]}"
    assert observed[429] >= 1
    assert any(after == before / 2 for before, after in changes[mark:]), f"a 429 halves the rate: {changes[mark:]}"
    assert all("items" in answer for answer in answers), "every request ends with the list"


async def test_token_bucket_paces_requests_to_the_api_server(cluster: LocalCluster, namespace: str) -> None:
    rate, burst, count = 20.0, 5, 25
    answered: list[float] = []
    client = await KubeClient.connect(str(cluster.kubeconfig), limiter=TokenBucket(rate=rate, burst=burst),
                                      observer=lambda request: answered.append(time.monotonic()))
    try:
        started = time.monotonic()
        results = await asyncio.gather(*(client.request("GET", f"/api/v1/namespaces/{namespace}")
                                         for _ in range(count)))
        elapsed = time.monotonic() - started
    finally:
        await client.close()
    assert len(results) == count and len(answered) == count
    # The burst goes at once; then one request per 1/rate seconds: the k-th answer (0-based) cannot come
    # before the k-th request could be sent, (k - burst + 1) / rate seconds after the start.
    for k, at in enumerate(sorted(answered)):
        earliest = max(0, k - burst + 1) / rate
        assert at - started >= earliest - 0.005, f"answer {k} after {at - started:.3f}s, paced for {earliest:.3f}s"
    assert elapsed >= (count - burst) / rate - 0.005
    assert elapsed < 5, f"{count} requests at {rate}/s took {elapsed:.2f}s"
