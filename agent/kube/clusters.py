"""Every cluster the agent deploys to: per cluster its own client, discovery, watch cache, rate
limit and reachability, so that one cluster being down, slow or gone never slows another.

    home        the cluster the agent runs against ([agent] kubeconfig, or the pod's): `in-cluster`,
                `https://kubernetes.default.svc` as Argo CD names it; leader election lives there
    configured  `[[clusters]]`
    secrets     Argo CD cluster Secrets in [agent] credentials_namespace, read again every poll
                interval (agent.kube.cluster_secrets)

Apps name a cluster by name or server URL (`cluster_for_destination`). `admit` hands out the
cluster for a reconcile, or raises at once: UnknownCluster, or KubeUnreachable while it is
down (agent.kube.reachability). One probe per cluster asks a down cluster's `/version` with
backoff; when it answers (or goes down, or a Secret adds, changes or removes a cluster) the
listeners hear the cluster's names, so its apps are reconciled at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from agent.errors import KubeError, KubeUnreachable, UnknownCluster
from agent.kube.access import cluster_configuration, tls_material
from agent.kube.client import REQUEST_TIMEOUT, KubeClient, RequestObserver
from agent.kube.cluster_secrets import read_cluster_secrets
from agent.kube.ratelimit import make_limiter
from agent.kube.reachability import Reachability
from agent.kube.watch import Digest, Listener, WatchCache
from agent.model.clusters import DEFAULT_KUBE_BURST, DEFAULT_KUBE_QPS, IN_CLUSTER, IN_CLUSTER_SERVER, ClusterSpec
from agent.tasks import TaskSet

log = logging.getLogger(__name__)

PROBE_BACKOFF = (0.5, 1.0, 2.0)  # between probes of a down cluster; the last repeats (a GET /version)
READINESS_TTL = 5.0  # /readyz answers from a probe this recent
READINESS_TIMEOUT = 2.0  # a readiness probe gives up after this (the cluster is not marked down for it)
SECRETS_TIMEOUT = 10.0  # listing the cluster Secrets gives up after this: start-up does not wait longer
SECRETS_RETRY = 10.0  # after a failed read, the next comes this soon (not a whole poll interval later)
ClusterEvent = Callable[[frozenset[str]], None]  # every name of a cluster that came, went, changed or came back


class ClusterIdentity(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def server(self) -> str: ...


C = TypeVar("C", bound=ClusterIdentity)


def destination_of(cluster: str) -> tuple[str, str]:
    """(server, name) for an app's `cluster`: a URL names the server, anything else the name."""
    return (cluster, "") if "://" in cluster else ("", cluster)


def cluster_for_destination(server: str, name: str, clusters: Iterable[C]) -> C:
    """The cluster an Argo CD destination names, by `name` or by `server` (never both). Pure.
    Raises UnknownCluster with Argo CD's wording."""
    if server and name:
        raise UnknownCluster(f"application destination can't have both name and server defined: {name} {server}")
    if name:
        found = next((cluster for cluster in clusters if cluster.name == name), None)
        if found is None:
            raise UnknownCluster(f"there are no clusters with this name: {name}")
        return found
    if not server:
        raise UnknownCluster("application destination names neither a cluster name nor a server")
    wanted = server.rstrip("/")
    found = next((cluster for cluster in clusters if cluster.server.rstrip("/") == wanted), None)
    if found is None:
        raise UnknownCluster(f"there are no clusters with this server: {server}")
    return found


@dataclass(frozen=True)
class ClusterOptions:
    """What every cluster's client and watch cache share."""

    digest: Digest
    keep_managed_fields: bool = False
    observer: RequestObserver | None = None
    kube_qps: int = DEFAULT_KUBE_QPS  # [agent]'s, for clusters from Secrets
    kube_burst: int = DEFAULT_KUBE_BURST


class Cluster:
    """One cluster: its spec, and once connected its client and watch cache."""

    def __init__(self, spec: ClusterSpec, *, kube: KubeClient | None = None,
                 on_change: Callable[[Cluster, bool], None] | None = None) -> None:
        self.spec = spec
        self.kube = kube
        self.watch: WatchCache | None = None
        self.reach = Reachability(spec.name, on_change=(lambda up: on_change(self, up)) if on_change else None)
        self.readiness: tuple[float, dict[str, Any]] | None = None  # (when, what /readyz showed)
        self.probe: asyncio.Task[None] | None = None
        self._connecting = asyncio.Lock()
        if kube is not None:
            kube.add_listener(self.reach)

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def server(self) -> str:
        """The URL apps may name it by: the declared one, else the kubeconfig's (once read)."""
        return self.spec.server or (self.kube.host if self.kube is not None else "")

    @property
    def aliases(self) -> frozenset[str]:
        return frozenset(alias for alias in (self.name, self.server) if alias)

    async def connect(self, options: ClusterOptions, *, gate: Callable[[], bool],
                      listener: Listener | None) -> tuple[KubeClient, WatchCache]:
        """The client (built on first use: reading a kubeconfig or token file, no request) and the
        watch cache. Raises KubeUnreachable naming the file or setting that failed."""
        async with self._connecting:
            if self.kube is None:
                configuration = await cluster_configuration(self.spec)
                try:
                    with tls_material(self.spec, configuration):
                        kube = KubeClient(configuration, observer=options.observer,
                                          limiter=make_limiter(self.spec.kube_qps, self.spec.kube_burst,
                                                               name=self.name))
                except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                    raise KubeUnreachable(f"cluster {self.name}: cannot set up TLS ({self.spec.origin}): "
                                          f"{exc}") from exc
                kube.add_listener(self.reach)
                kube.gate_writes(gate)
                self.kube = kube
            if self.watch is None:
                self.watch = WatchCache(self.kube, digest=options.digest, on_change=listener,
                                        keep_managed_fields=options.keep_managed_fields)
            return self.kube, self.watch

    async def stop(self) -> None:
        """Stop the watches (the client stays usable, e.g. for the leader's Lease)."""
        if self.watch is not None:
            await self.watch.close()

    async def close(self) -> None:
        await self.stop()
        if self.kube is not None:
            self.kube.remove_listener(self.reach)
            await self.kube.close()


class ClusterRegistry:
    def __init__(self, home: KubeClient, *, clusters: Sequence[ClusterSpec] = (), options: ClusterOptions) -> None:
        self._options = options
        self._home_kube = home
        home_spec = ClusterSpec(name=IN_CLUSTER, server=IN_CLUSTER_SERVER, origin="[agent] kubeconfig")
        self.home = Cluster(home_spec, kube=home, on_change=self._transition)
        self._configured = [Cluster(spec, on_change=self._transition) for spec in clusters]
        self._from_secrets: list[Cluster] = []
        self._secret_problems: frozenset[str] = frozenset()
        self._events: list[ClusterEvent] = []
        self._gate: Callable[[], bool] | None = None
        self._listener: Listener | None = None
        self._tasks = TaskSet()
        self._retiring: set[asyncio.Task[None]] = set()
        self._started = False
        self._starting = asyncio.Lock()

    # ------------------------------------------------------------------ finding a cluster

    def clusters(self) -> list[Cluster]:
        """Home first, then `[[clusters]]`, then Secrets': the first of a name or server wins."""
        return [self.home, *self._configured, *self._from_secrets]

    def find(self, cluster: str) -> Cluster:
        """The cluster an app's `cluster` names; raises UnknownCluster."""
        server, name = destination_of(cluster)
        return cluster_for_destination(server, name, self.clusters())

    def server_of(self, cluster: str) -> str:
        """The server URL for metrics: known, or the one the app names (else empty)."""
        try:
            return self.find(cluster).server
        except UnknownCluster:
            return destination_of(cluster)[0]

    async def admit(self, cluster: str) -> Cluster:
        """The cluster for a reconcile of an app naming `cluster`, connected; raises UnknownCluster, or
        KubeUnreachable at once while it is down."""
        if not self._started:  # every reconcile asks: no lock once started and connected
            await self.start()
        found = self.find(cluster)
        found.reach.check()
        if found.kube is None or found.watch is None:
            await self._connect(found)
        return found

    async def _connect(self, cluster: Cluster) -> tuple[KubeClient, WatchCache]:
        try:
            return await cluster.connect(self._options, gate=self._writable, listener=self._listener)
        except KubeUnreachable as exc:
            cluster.reach.unreachable(exc.message)
            raise

    async def start(self) -> None:
        """Build every configured cluster's client (no request is made) and start the probes; once."""
        async with self._starting:  # a kubeconfig's server is known once read: callers wait for all
            if self._started:
                return
            for cluster in self.clusters():
                self._watch_over(cluster)
                with contextlib.suppress(KubeUnreachable):  # it is down: its probe tries again
                    await self._connect(cluster)
            self._started = True

    # ------------------------------------------------------------------ what every cluster shares

    def gate_writes(self, may_write: Callable[[], bool]) -> None:
        """Refuse applies and deletes on every cluster whenever `may_write()` is false (leader election)."""
        self._gate = may_write
        for cluster in self.clusters():
            if cluster.kube is not None:
                cluster.kube.gate_writes(self._writable)

    def _writable(self) -> bool:
        return self._gate() if self._gate is not None else True

    def set_listener(self, listener: Listener) -> None:
        """Where every cluster's watch cache reports changes to managed objects."""
        self._listener = listener
        for cluster in self.clusters():
            if cluster.watch is not None:
                cluster.watch.set_listener(listener)

    def on_event(self, callback: ClusterEvent) -> None:
        self._events.append(callback)

    def _notify(self, aliases: frozenset[str]) -> None:
        for callback in self._events:
            callback(aliases)

    def _transition(self, cluster: Cluster, up: bool) -> None:
        cluster.readiness = None
        if up and cluster.watch is not None:
            cluster.watch.retry_now()
        self._notify(cluster.aliases)

    # ------------------------------------------------------------------ probing

    def _watch_over(self, cluster: Cluster) -> None:
        cluster.probe = self._tasks.spawn(f"cluster-probe:{cluster.name}", self._probe(cluster))

    async def _probe(self, cluster: Cluster) -> None:
        """While the cluster is down, ask it again with backoff until it answers."""
        while True:
            await cluster.reach.wait_down()
            for attempt in itertools.count():
                await asyncio.sleep(PROBE_BACKOFF[min(attempt, len(PROBE_BACKOFF) - 1)])
                if not cluster.reach.down:
                    break
                with contextlib.suppress(KubeError, KubeUnreachable):  # the client told its reachability
                    kube, _ = await self._connect(cluster)
                    await kube.ping()

    async def readiness(self) -> dict[str, dict[str, Any]]:
        """Per cluster: its server, whether it answers, and the error when not (for /readyz)."""
        clusters = self.clusters()
        reports = await asyncio.gather(*(self._report(cluster) for cluster in clusters))
        return {cluster.name: report for cluster, report in zip(clusters, reports, strict=True)}

    async def _report(self, cluster: Cluster) -> dict[str, Any]:
        base: dict[str, Any] = {"server": cluster.server}
        if cluster.reach.down:
            return {**base, "reachable": False, "error": cluster.reach.error}
        if cluster.readiness is not None and time.monotonic() - cluster.readiness[0] < READINESS_TTL:
            return cluster.readiness[1]
        try:
            kube, _ = await self._connect(cluster)
            report = {**base, "reachable": True, "version": await asyncio.wait_for(kube.ping(), READINESS_TIMEOUT)}
        except KubeError as exc:  # it answered, but refused: reachable, not usable
            report = {**base, "reachable": True, "error": str(exc)}
        except KubeUnreachable as exc:
            report = {**base, "reachable": False, "error": exc.message}
        except TimeoutError:
            report = {**base, "reachable": False, "error": f"no answer within {READINESS_TIMEOUT:.0f}s"}
        cluster.readiness = (time.monotonic(), report)
        return report

    # ------------------------------------------------------------------ clusters coming and going

    async def configure(self, specs: Sequence[ClusterSpec]) -> None:
        """`[[clusters]]` as reloaded: unchanged clusters keep their client and watches."""
        self._configured, changed = await self._replace(self._configured, specs)
        self._notify(changed)

    async def refresh_secrets(self, namespace: str, *, within: float = SECRETS_TIMEOUT) -> bool:
        """Read the cluster Secrets again; False when they could not be listed (within `within` seconds):
        then the clusters known stay."""
        try:
            async with asyncio.timeout(within):
                found = await read_cluster_secrets(self._home_kube, namespace, kube_qps=self._options.kube_qps,
                                                   kube_burst=self._options.kube_burst)
        except (KubeError, KubeUnreachable, TimeoutError) as exc:
            log.warning("cannot read cluster Secrets in namespace %s; keeping the clusters known: %s", namespace,
                        str(exc) or f"no answer within {within:.0f}s")
            return False
        taken = frozenset().union(*(cluster.aliases for cluster in [self.home, *self._configured]))
        usable = [spec for spec in found.clusters if not spec.aliases & taken]
        problems = frozenset(found.problems) | {f"{spec.origin}: cluster {spec.name} ({spec.server}) is already "
                                                 "configured" for spec in found.clusters if spec.aliases & taken}
        for problem in sorted(problems - self._secret_problems):  # each once, not every refresh
            log.warning("cluster Secret skipped: %s", problem)
        self._secret_problems = problems
        self._from_secrets, changed = await self._replace(self._from_secrets, usable)
        self._notify(changed)
        return True

    def follow_secrets(self, namespace: str, *, interval: float, read: bool) -> None:
        """Read the cluster Secrets every `interval` from now on (until `stop`); sooner while the last
        read (`read`: the one before this call) failed."""
        self._tasks.spawn("cluster-secrets", self._refresh_secrets_every(namespace, interval, read))

    async def _refresh_secrets_every(self, namespace: str, interval: float, read: bool) -> None:
        while True:
            await asyncio.sleep(interval if read else min(interval, SECRETS_RETRY))
            read = await self.refresh_secrets(namespace)

    async def _replace(self, current: list[Cluster], specs: Sequence[ClusterSpec]) -> tuple[list[Cluster],
                                                                                             frozenset[str]]:
        """Clusters for `specs` (the same spec keeps its Cluster, others are retired), and the names of
        those that came or went, to be told once the new list is in place."""
        known = {cluster.spec: cluster for cluster in current}
        changed: frozenset[str] = frozenset()
        for cluster in current:
            if cluster.spec not in specs:
                log.info("cluster %s removed or changed (%s)", cluster.name, cluster.spec.origin)
                await self._retire(cluster)
                changed |= cluster.aliases
        result = []
        for spec in specs:
            if spec in known:
                result.append(known[spec])
                continue
            added = Cluster(spec, on_change=self._transition)
            log.info("cluster %s added (%s)", added.name, spec.origin)
            if self._started:
                self._watch_over(added)
                with contextlib.suppress(KubeUnreachable):  # it is down: its probe tries again
                    await self._connect(added)
            changed |= added.aliases
            result.append(added)
        return result, changed

    async def _retire(self, cluster: Cluster) -> None:
        """Stop its probe and watches now; close its client once requests in flight have had their time."""
        if cluster.probe is not None:
            cluster.probe.cancel()
        await cluster.stop()
        task = asyncio.create_task(self._close_later(cluster), name=f"cluster-retire:{cluster.name}")
        self._retiring.add(task)
        task.add_done_callback(self._retired)

    async def _close_later(self, cluster: Cluster) -> None:
        try:
            await asyncio.sleep(REQUEST_TIMEOUT)
        finally:
            await cluster.close()

    def _retired(self, task: asyncio.Task[None]) -> None:
        self._retiring.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s failed: %s", task.get_name(), task.exception())

    # ------------------------------------------------------------------ shutting down

    async def stop(self) -> None:
        """Stop probes, the Secret refresh and every watch (the controller is stopping)."""
        await self._tasks.shutdown()
        for cluster in self.clusters():
            await cluster.stop()

    async def close(self) -> None:
        """Close every client but the home cluster's, which its owner closes (after the Lease is released)."""
        await self.stop()
        for task in list(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        for cluster in [*self._configured, *self._from_secrets]:
            await cluster.close()
        self._home_kube.remove_listener(self.home.reach)
