"""Assess objects: the kind → check table, configured rules, app health and wave health.

Everything here is pure: live objects in, `Health` out. An object being deleted is
Progressing whatever its kind, as in Argo CD; a check that cannot decide gives Unknown.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from agent.engine.health import core, workloads
from agent.engine.health._common import Check, Health, progressing
from agent.engine.health.custom import HealthRule, condition_health
from agent.model import HealthStatus, KubeObject, ObjectRef

CHECKS: dict[tuple[str, str], Check] = {
    ("apps", "Deployment"): workloads.deployment_health,
    ("apps", "StatefulSet"): workloads.statefulset_health,
    ("apps", "DaemonSet"): workloads.daemonset_health,
    ("apps", "ReplicaSet"): workloads.replicaset_health,
    ("extensions", "Deployment"): workloads.deployment_health,
    ("extensions", "DaemonSet"): workloads.daemonset_health,
    ("extensions", "ReplicaSet"): workloads.replicaset_health,
    ("", "Pod"): workloads.pod_health,
    ("batch", "Job"): workloads.job_health,
    ("batch", "CronJob"): workloads.cronjob_health,
    ("", "Service"): core.service_health,
    ("networking.k8s.io", "Ingress"): core.ingress_health,
    ("extensions", "Ingress"): core.ingress_health,
    ("", "PersistentVolumeClaim"): core.persistent_volume_claim_health,
    ("", "Namespace"): core.namespace_health,
    ("autoscaling", "HorizontalPodAutoscaler"): core.horizontal_pod_autoscaler_health,
    ("apiregistration.k8s.io", "APIService"): core.api_service_health,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): core.custom_resource_definition_health,
}

# A Pod or Job that the sync engine will delete after a hook keeps this finalizer; Argo CD
# assesses it normally even while it is being deleted.
HOOK_FINALIZER = "argocd.argoproj.io/hook-finalizer"
MAX_LISTED = 10


class HealthAssessor:
    """Health of live objects: built-in checks, the condition rule, and configured overrides.

    A rule for a group/kind replaces the built-in check of that kind (as an Argo CD
    health customization does); `kind = "*"` applies to every kind of the group
    without a rule of its own.
    """

    def __init__(self, rules: Iterable[HealthRule] = ()) -> None:
        self._rules = {(rule.group, rule.kind): rule for rule in rules}

    def assess(self, obj: KubeObject | None) -> Health:
        """Health of one live object; None means it is not in the cluster."""
        if obj is None:
            return Health(HealthStatus.MISSING, "object does not exist")
        try:
            return self._assess(obj)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return Health(HealthStatus.UNKNOWN, f"health check failed: {exc}")

    def _assess(self, obj: KubeObject) -> Health:
        meta = obj.get("metadata") or {}
        if meta.get("deletionTimestamp") and HOOK_FINALIZER not in (meta.get("finalizers") or []):
            return progressing("Pending deletion")
        ref = ObjectRef.of(obj)
        rule = self._rules.get((ref.group, ref.kind)) or self._rules.get((ref.group, "*"))
        if rule is not None:
            return condition_health(obj, rule)
        check = CHECKS.get((ref.group, ref.kind))
        return check(obj) if check is not None else condition_health(obj)

    def wave(self, live: Mapping[ObjectRef, KubeObject | None]) -> WaveHealth:
        """Whether the objects of one sync wave let the next wave start; see `WaveHealth`."""
        return wave_status({ref: self.assess(obj) for ref, obj in live.items()})


_DEFAULT = HealthAssessor()


def object_health(obj: KubeObject | None, rules: Iterable[HealthRule] = ()) -> Health:
    """Health of one live object (None: not in the cluster), with optional configured rules."""
    assessor = HealthAssessor(rules) if rules else _DEFAULT
    return assessor.assess(obj)


def aggregate(statuses: Iterable[HealthStatus]) -> HealthStatus:
    """An app is as healthy as its least healthy resource; no resources is Healthy."""
    worst = HealthStatus.HEALTHY
    for status in statuses:
        if status.is_worse(worst):
            worst = status
    return worst


@dataclass(frozen=True)
class WaveHealth:
    """Where one sync wave stands, by Argo CD's rule for resources in a multi-wave sync.

    - `done`: every object is Healthy or Suspended; the next wave may start. A paused
      Deployment or a suspended Job is a state someone chose, so it does not hold the sync
      until the timeout (Argo CD keeps waiting on it; we deliberately do not).
    - `failed`: some object is Degraded; Argo CD fails the sync at once, without waiting
      for the timeout (a crash-looping pod or an exceeded progress deadline will not heal
      by itself).
    - otherwise keep waiting: Progressing, Missing and Unknown may still change.

    `unhealthy` lists every object that is neither Healthy nor Suspended, worst first, with why.
    """

    done: bool
    failed: bool
    unhealthy: tuple[tuple[ObjectRef, Health], ...]

    def describe(self) -> str:
        """`Deployment/ns/api: Progressing: Waiting for ...; ...` (at most ten, then a count)."""
        shown = [f"{ref}: {health.status.value}" + (f": {health.message}" if health.message else "")
                 for ref, health in self.unhealthy[:MAX_LISTED]]
        if len(self.unhealthy) > MAX_LISTED:
            shown.append(f"and {len(self.unhealthy) - MAX_LISTED} more")
        return "; ".join(shown)


WAVE_DONE = frozenset({HealthStatus.HEALTHY, HealthStatus.SUSPENDED})


def wave_status(healths: Mapping[ObjectRef, Health]) -> WaveHealth:
    """The wave decision over already assessed objects."""
    unhealthy = sorted(
        ((ref, health) for ref, health in healths.items() if health.status not in WAVE_DONE),
        key=lambda item: (-item[1].status.rank, item[0]),
    )
    failed = any(health.status is HealthStatus.DEGRADED for _, health in unhealthy)
    return WaveHealth(done=not unhealthy, failed=failed, unhealthy=tuple(unhealthy))


def wave_health(live: Mapping[ObjectRef, KubeObject | None], rules: Iterable[HealthRule] = ()) -> WaveHealth:
    """Whether a wave's live objects (None: not in the cluster) let the sync go on."""
    assessor = HealthAssessor(rules) if rules else _DEFAULT
    return assessor.wave(live)
