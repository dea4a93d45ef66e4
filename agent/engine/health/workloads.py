"""Workload checks: Deployment, StatefulSet, DaemonSet, ReplicaSet, Pod, Job, CronJob.

The rules and messages follow Argo CD's gitops-engine `pkg/health` (themselves borrowed
from `kubectl rollout status`) and its `batch/CronJob` health script.
"""

from __future__ import annotations

from typing import Any

from agent.engine.health._common import (
    Health,
    condition,
    conditions,
    degraded,
    generation,
    healthy,
    integer,
    join,
    observed_generation,
    progressing,
    section,
    suspended,
    text,
)
from agent.model import HealthStatus, KubeObject

# Argo CD's annotation for a Pod whose restart policy is not Always but which is not a hook.
IGNORE_RESTART_POLICY = "argocd.argoproj.io/ignore-restart-policy"
ROLLOUT = "Waiting for rollout to finish: "


def deployment_health(obj: KubeObject) -> Health:
    spec, status = section(obj, "spec"), section(obj, "status")
    if spec.get("paused"):
        return suspended("Deployment is paused")
    if generation(obj) > observed_generation(obj):
        return progressing(ROLLOUT + "observed deployment generation less than desired generation")
    deadline = condition(obj, "Progressing")
    if deadline is not None and deadline.get("reason") == "ProgressDeadlineExceeded":
        name = text(section(obj, "metadata"), "name")
        return degraded(join(f'Deployment "{name}" exceeded its progress deadline', text(deadline, "message")))
    replicas = integer(spec, "replicas", 1, where="spec")
    updated = integer(status, "updatedReplicas")
    total = integer(status, "replicas")
    available = integer(status, "availableReplicas")
    if updated < replicas:
        return progressing(ROLLOUT + f"{updated} out of {replicas} new replicas have been updated...")
    if total > updated:
        return progressing(ROLLOUT + f"{total - updated} old replicas are pending termination...")
    if available < updated:
        return progressing(ROLLOUT + f"{available} of {updated} updated replicas are available...")
    return healthy()


def statefulset_health(obj: KubeObject) -> Health:
    spec, status = section(obj, "spec"), section(obj, "status")
    observed = observed_generation(obj)
    if observed == 0 or generation(obj) > observed:
        return progressing("Waiting for statefulset spec update to be observed...")
    replicas = integer(spec, "replicas", 1, where="spec")
    ready = integer(status, "readyReplicas")
    updated = integer(status, "updatedReplicas")
    if ready < replicas:
        return progressing(f"Waiting for {replicas - ready} pods to be ready...")
    strategy = spec.get("updateStrategy") or {}
    strategy_type = strategy.get("type") or "RollingUpdate"
    rolling = strategy.get("rollingUpdate")
    if strategy_type == "RollingUpdate" and isinstance(rolling, dict):
        partition = rolling.get("partition")
        if partition is not None:
            partition = integer(rolling, "partition", where="spec.updateStrategy.rollingUpdate")
            if updated < replicas - partition:
                return progressing(
                    f"Waiting for partitioned roll out to finish: {updated} out of {replicas - partition} "
                    "new pods have been updated..."
                )
        return healthy(f"partitioned roll out complete: {updated} new pods have been updated...")
    if strategy_type == "OnDelete":
        return healthy(f"statefulset has {ready} ready pods ({updated} updated)")
    update_revision, current_revision = text(status, "updateRevision"), text(status, "currentRevision")
    if update_revision != current_revision:
        return progressing(
            f"waiting for statefulset rolling update to complete {updated} pods at revision {update_revision}..."
        )
    current = integer(status, "currentReplicas")
    return healthy(f"statefulset rolling update complete {current} pods at revision {current_revision}...")


def daemonset_health(obj: KubeObject) -> Health:
    spec, status = section(obj, "spec"), section(obj, "status")
    if generation(obj) > observed_generation(obj):
        return progressing(ROLLOUT + "observed daemon set generation less than desired generation")
    name = text(section(obj, "metadata"), "name")
    desired = integer(status, "desiredNumberScheduled")
    updated = integer(status, "updatedNumberScheduled")
    available = integer(status, "numberAvailable")
    if (spec.get("updateStrategy") or {}).get("type") == "OnDelete":
        return healthy(f"daemon set {updated} out of {desired} new pods have been updated")
    if updated < desired:
        return progressing(
            f'Waiting for daemon set "{name}" rollout to finish: '
            f"{updated} out of {desired} new pods have been updated..."
        )
    if available < desired:
        return progressing(
            f'Waiting for daemon set "{name}" rollout to finish: '
            f"{available} of {desired} updated pods are available..."
        )
    return healthy()


def replicaset_health(obj: KubeObject) -> Health:
    spec, status = section(obj, "spec"), section(obj, "status")
    if generation(obj) > observed_generation(obj):
        return progressing(ROLLOUT + "observed replica set generation less than desired generation")
    failure = condition(obj, "ReplicaFailure")
    if failure is not None and failure.get("status") == "True":
        return degraded(text(failure, "message") or text(failure, "reason") or "ReplicaFailure")
    replicas = integer(spec, "replicas", 1, where="spec")
    available = integer(status, "availableReplicas")
    if available < replicas:
        return progressing(ROLLOUT + f"{available} out of {replicas} new replicas are available...")
    return healthy()


def pod_health(obj: KubeObject) -> Health:
    spec, status = section(obj, "spec"), section(obj, "status")
    restart_policy = spec.get("restartPolicy") or "Always"
    message = text(status, "message")
    # Only long-running pods are judged by waiting reasons: a hook pod (restart policy Never
    # or OnFailure) stuck in ImagePullBackOff may still succeed once the image appears.
    if restart_policy == "Always":
        failing = [_waiting_failure(ctr) for ctr in _container_statuses(status, "containerStatuses")]
        reasons = [reason for reason in failing if reason]
        if reasons:
            return degraded(", ".join(reasons))
    phase = status.get("phase")
    if phase == "Pending":
        return progressing(message)
    if phase == "Succeeded":
        return healthy(message)
    if phase == "Failed":
        if message:
            return degraded(message)
        ctrs = _container_statuses(status, "initContainerStatuses") + _container_statuses(status, "containerStatuses")
        return degraded(next((m for m in map(_termination_failure, ctrs) if m), ""))
    if phase == "Running":
        annotations = section(obj, "metadata").get("annotations") or {}
        if restart_policy != "Always" and IGNORE_RESTART_POLICY not in annotations:
            # Pods meant to finish (typically hooks) are Progressing while they run.
            return progressing(message)
        ready = condition(obj, "Ready")
        if ready is not None and ready.get("status") == "True":
            return healthy(message)
        for ctr in _container_statuses(status, "containerStatuses"):
            if (ctr.get("lastState") or {}).get("terminated") is not None:
                return degraded(message or f"container {ctr.get('name', '')!r} has terminated and is not ready")
        return progressing(message)
    return Health(HealthStatus.UNKNOWN, message or f"pod phase is {phase!r}")


def _container_statuses(status: dict[str, Any], key: str) -> list[dict[str, Any]]:
    found = status.get(key) or []
    if not isinstance(found, list):
        raise TypeError(f"status.{key} is not a list")
    return [ctr for ctr in found if isinstance(ctr, dict)]


def _waiting_failure(ctr: dict[str, Any]) -> str:
    """`name: Reason: message` when a container waits for a reason that means failure, else ''."""
    waiting = (ctr.get("state") or {}).get("waiting") or {}
    reason = text(waiting, "reason")
    if reason.startswith("Err") or reason.endswith("Error") or reason.endswith("BackOff"):
        return join(f"container {ctr.get('name', '')!r}", reason, text(waiting, "message"))
    return ""


def _termination_failure(ctr: dict[str, Any]) -> str:
    terminated = (ctr.get("state") or {}).get("terminated")
    if not isinstance(terminated, dict):
        return ""
    if terminated.get("message"):
        return text(terminated, "message")
    if terminated.get("reason") == "OOMKilled":
        return "OOMKilled"
    exit_code = integer(terminated, "exitCode", where="containerStatuses.state.terminated")
    if exit_code != 0:
        return f"container {ctr.get('name', '')!r} failed with exit code {exit_code}"
    return ""


def job_health(obj: KubeObject) -> Health:
    spec = section(obj, "spec")
    found = {cond.get("type"): cond for cond in conditions(obj) if cond.get("status") == "True"}
    if "Failed" in found:
        return degraded(text(found["Failed"], "message") or text(found["Failed"], "reason") or "Job failed")
    if "Complete" in found:
        return healthy(text(found["Complete"], "message"))
    # Argo CD counts any Suspended condition as final; only a true one means suspended (a resumed
    # Job keeps `Suspended=False` while it runs again).
    if "Suspended" in found or spec.get("suspend") is True:
        return suspended(text(found.get("Suspended", {}), "message") or "Job is suspended")
    status = section(obj, "status")
    return progressing(f"Job is running: {integer(status, 'active')} active, {integer(status, 'succeeded')} succeeded")


def cronjob_health(obj: KubeObject) -> Health:
    if section(obj, "spec").get("suspend") is True:
        return suspended("CronJob is Suspended")
    if obj.get("status") is None:
        return progressing("Waiting for CronJob")
    status = section(obj, "status")
    scheduled, succeeded = text(status, "lastScheduleTime"), text(status, "lastSuccessfulTime")
    if not scheduled:
        # A CronJob that misses its schedule is indistinguishable from one not yet due.
        return healthy("CronJob has not been scheduled yet")
    if not succeeded:
        return healthy("The CronJob never completed successfully. It may not be healthy")
    if status.get("active"):
        return healthy("The job is running. Its last execution may not have been successful")
    # RFC 3339 timestamps in the same zone compare correctly as text.
    if succeeded < scheduled:
        return degraded("CronJob has not completed its last execution successfully")
    return healthy("CronJob has completed its last execution successfully")
