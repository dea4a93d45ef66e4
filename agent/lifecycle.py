"""What runs between "serving" and "stopped": leadership, the controller's loops, systemd notifications.

    start  campaign for the leader lease (or lead at once, without election); the
           controller's loops run exactly while this replica leads
    run    READY / STATUS / WATCHDOG to systemd while waiting for the stop signal
    stop   STOPPING=1, stop campaigning, drain in-flight reconciles, release the lease
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping

from agent.config import AgentSettings
from agent.controller import Controller
from agent.controller.sharing import ControllerShards
from agent.errors import ConfigError
from agent.kube import KubeClient
from agent.kube.incluster import ServiceAccountFiles, in_cluster
from agent.leader import LeaderElector, SingleInstance, lease_identity
from agent.metrics import Metrics
from agent.notify import Notifier, status_line
from agent.shard.coordinator import ShardCoordinator
from agent.shard.membership import Membership
from agent.shard.shared import SharedState
from agent.shard.table import OwnerTableStore

log = logging.getLogger(__name__)


def lease_namespace(agent: AgentSettings, environ: Mapping[str, str] = os.environ) -> str:
    """`leader_election_namespace`, else $POD_NAMESPACE, else the service account's namespace."""
    namespace = agent.leader_election.namespace or environ.get("POD_NAMESPACE", "")
    if not namespace and in_cluster(environ):
        namespace = ServiceAccountFiles.from_environment(environ).read_namespace()
    if not namespace:
        what = "sharding" if agent.sharding.enabled else "leader_election"
        raise ConfigError(f"[agent] {what} = true needs leader_election_namespace "
                          "(or $POD_NAMESPACE, or running in a pod)")
    return namespace


def advertise_url(agent: AgentSettings, *, tls: bool, environ: Mapping[str, str] = os.environ) -> str:
    """Where the other replicas reach this one: `advertise_url`, else $POD_IP and the listen port."""
    if agent.sharding.advertise_url:
        return agent.sharding.advertise_url
    pod_ip = environ.get("POD_IP", "")
    if not pod_ip:
        raise ConfigError("[agent] sharding = true needs advertise_url (or $POD_IP, as the manifests set it)")
    host = f"[{pod_ip}]" if ":" in pod_ip else pod_ip
    return f"{'https' if tls else 'http'}://{host}:{agent.listen_port}"


def build_sharding(agent: AgentSettings, kube: KubeClient, controller: Controller, metrics: Metrics, *,
                   gate_writes: Callable[[Callable[[], bool]], None], tls: bool) -> ShardCoordinator:
    """Membership, owner table and shared state (Leases and ConfigMaps on `kube`, in leader election's
    namespace); applies and deletes are refused on every cluster unless for an app this replica owns."""
    namespace = lease_namespace(agent)
    identity = lease_identity()
    membership = Membership(kube.unpaced(), agent.leader_election, namespace=namespace, prefix=agent.sharding.name,
                            identity=identity, address=advertise_url(agent, tls=tls))
    coordinator = ShardCoordinator(
        membership=membership, table=OwnerTableStore(kube.unpaced(), namespace=namespace, prefix=agent.sharding.name),
        shared=SharedState(kube, namespace=namespace, prefix=agent.sharding.name, observer=metrics),
        on_started=controller.start, observer=metrics)
    ControllerShards(controller, coordinator)
    metrics.leader.set(0)
    gate_writes(coordinator.may_write)
    return coordinator


def build_leadership(agent: AgentSettings, kube: KubeClient, controller: Controller, metrics: Metrics, *,
                     gate_writes: Callable[[Callable[[], bool]], None] | None = None) -> LeaderElector | SingleInstance:
    """The controller runs while this replica leads; applies and deletes are refused otherwise (on every
    cluster `gate_writes` reaches; by default the home cluster's client alone). The Lease is on `kube`."""
    if not agent.leader_election.enabled:
        metrics.leader.set(1)
        return SingleInstance(on_started=controller.start)
    def lead() -> None:
        # Another replica may have applied or pruned while this one followed: its snapshot's
        # inventories are not to be trusted for prune until rebuilt from the cluster.
        controller.mark_inventories_stale()
        controller.start()

    elector = LeaderElector(
        kube.unpaced(), agent.leader_election, namespace=lease_namespace(agent), identity=lease_identity(),
        on_started=lead, on_stopped=controller.halt,
        observer=lambda leading: metrics.leader.set(1 if leading else 0),
    )
    metrics.leader.set(0)
    (gate_writes or kube.gate_writes)(lambda: elector.is_leader)
    return elector


Leading = LeaderElector | SingleInstance | ShardCoordinator


class Lifecycle:
    def __init__(self, *, controller: Controller, leadership: Leading, notifier: Notifier) -> None:
        self.controller, self.leadership, self.notifier = controller, leadership, notifier

    def is_ready(self) -> bool:
        """Ready for systemd: every app reconciled once (with sharding: every app it runs), or this replica
        follows a leader."""
        if not self.leadership.settled:
            return False
        return not self.leadership.is_leader or self.controller.all_reconciled

    def status(self) -> str:
        return status_line(self.controller.statuses(), self.leadership)

    async def run(self, stop: asyncio.Event, *, drain_timeout: float) -> None:
        """Lead (or campaign) and notify until `stop` is set; then stop in order."""
        self.leadership.start()
        notifying = asyncio.create_task(self.notifier.run(is_ready=self.is_ready, status=self.status),
                                        name="systemd-notify")
        try:
            await stop.wait()
            self.notifier.stopping()
            log.info("stopping: draining in-flight reconciles")
            await self.leadership.stop_campaign()
            await self.controller.stop(drain_timeout=drain_timeout)
            await self.leadership.release()
        finally:
            notifying.cancel()
            await asyncio.gather(notifying, return_exceptions=True)
