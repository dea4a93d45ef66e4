"""Health of live objects, with Argo CD's semantics: a kind → check table, pure functions.

A check that cannot decide returns Unknown with a message; it never raises.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from agent.model import HealthStatus, KubeObject


@dataclass(frozen=True)
class Health:
    status: HealthStatus
    message: str = ""


HEALTHY = Health(HealthStatus.HEALTHY)
Check = Callable[[KubeObject], Health]


def _condition(obj: KubeObject, kind: str) -> dict[str, Any] | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def deployment_health(obj: KubeObject) -> Health:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if spec.get("paused"):
        return Health(HealthStatus.SUSPENDED, "Deployment is paused")
    generation = (obj.get("metadata") or {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return Health(HealthStatus.PROGRESSING, "Waiting for rollout to finish: observed generation is behind")
    progressing = _condition(obj, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return Health(HealthStatus.DEGRADED, f"Deployment {obj['metadata']['name']} exceeded its progress deadline")
    replicas = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    total = status.get("replicas", 0)
    available = status.get("availableReplicas", 0)
    if updated < replicas:
        return Health(HealthStatus.PROGRESSING, f"{updated} of {replicas} updated replicas are available")
    if total > updated:
        return Health(HealthStatus.PROGRESSING, f"{total - updated} old replicas are pending termination")
    if available < updated:
        return Health(HealthStatus.PROGRESSING, f"{available} of {updated} updated replicas are available")
    return HEALTHY


CHECKS: dict[tuple[str, str], Check] = {
    ("apps", "Deployment"): deployment_health,
}


def object_health(obj: KubeObject | None) -> Health:
    """Health of one live object; None means it does not exist."""
    if obj is None:
        return Health(HealthStatus.MISSING, "object does not exist")
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0] if "/" in api_version else ""
    check = CHECKS.get((group, str(obj.get("kind", ""))))
    if check is None:
        return HEALTHY
    try:
        return check(obj)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        return Health(HealthStatus.UNKNOWN, f"health check failed: {exc}")


def aggregate(statuses: Iterable[HealthStatus]) -> HealthStatus:
    """An app is as healthy as its least healthy resource."""
    worst = HealthStatus.HEALTHY
    for status in statuses:
        if status.is_worse(worst):
            worst = status
    return worst
