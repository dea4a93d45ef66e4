"""Workload checks on objects recorded from the local cluster, bent into each edge case."""

from __future__ import annotations

from typing import Any

from agent.engine.health import Health, object_health
from agent.model import HealthStatus
from tests.unit.health_fixtures import condition, recorded

HEALTHY, PROGRESSING, DEGRADED = HealthStatus.HEALTHY, HealthStatus.PROGRESSING, HealthStatus.DEGRADED
SUSPENDED, UNKNOWN = HealthStatus.SUSPENDED, HealthStatus.UNKNOWN


def status_of(obj: dict[str, Any]) -> HealthStatus:
    return object_health(obj).status


# ------------------------------------------------------------------ Deployment


def test_rolled_out_deployment_is_healthy() -> None:
    assert object_health(recorded("deployment-healthy")).status is HEALTHY


def test_deployment_whose_generation_is_not_observed_yet_is_progressing() -> None:
    dep = recorded("deployment-healthy")
    dep["metadata"]["generation"] = 2
    health = object_health(dep)
    assert health.status is PROGRESSING
    assert "observed deployment generation less than desired generation" in health.message


def test_deployment_with_replicas_not_yet_updated_is_progressing() -> None:
    dep = recorded("deployment-healthy")
    dep["status"]["updatedReplicas"] = 1
    health = object_health(dep)
    assert (health.status, health.message) == (
        PROGRESSING, "Waiting for rollout to finish: 1 out of 2 new replicas have been updated...",
    )


def test_deployment_with_old_replicas_left_is_progressing() -> None:
    dep = recorded("deployment-healthy")
    dep["status"]["replicas"] = 3
    assert object_health(dep).message == "Waiting for rollout to finish: 1 old replicas are pending termination..."


def test_deployment_with_unavailable_replicas_is_progressing() -> None:
    dep = recorded("deployment-healthy")
    dep["status"]["availableReplicas"] = 1
    health = object_health(dep)
    assert (health.status, health.message) == (
        PROGRESSING, "Waiting for rollout to finish: 1 of 2 updated replicas are available...",
    )


def test_deployment_past_its_progress_deadline_is_degraded() -> None:
    health = object_health(recorded("deployment-deadline-exceeded"))
    assert health.status is DEGRADED
    assert 'Deployment "stuck" exceeded its progress deadline' in health.message
    assert "has timed out progressing" in health.message


def test_deadline_of_an_unobserved_generation_does_not_count() -> None:
    dep = recorded("deployment-deadline-exceeded")
    dep["metadata"]["generation"] = 2
    assert status_of(dep) is PROGRESSING


def test_paused_deployment_is_suspended_even_when_behind() -> None:
    dep = recorded("deployment-deadline-exceeded")
    dep["spec"]["paused"] = True
    assert object_health(dep) == Health(SUSPENDED, "Deployment is paused")


def test_deployment_scaled_to_zero_is_healthy() -> None:
    dep = recorded("deployment-healthy")
    dep["spec"]["replicas"] = 0
    dep["status"] = {"observedGeneration": 1}
    assert status_of(dep) is HEALTHY


# ------------------------------------------------------------------ StatefulSet


def test_rolled_out_statefulset_is_healthy() -> None:
    health = object_health(recorded("statefulset-healthy"))
    assert health.status is HEALTHY
    assert "partitioned roll out complete" in health.message


def test_statefulset_not_observed_yet_is_progressing() -> None:
    sts = recorded("statefulset-healthy")
    sts["status"]["observedGeneration"] = 0
    assert object_health(sts).message == "Waiting for statefulset spec update to be observed..."


def test_statefulset_waiting_for_ready_pods_is_progressing() -> None:
    sts = recorded("statefulset-healthy")
    sts["status"]["readyReplicas"] = 1
    assert object_health(sts).message == "Waiting for 1 pods to be ready..."


def test_partitioned_rollout_is_progressing_until_pods_above_the_partition_update() -> None:
    sts = recorded("statefulset-healthy")
    sts["spec"]["replicas"] = 4
    sts["status"].update(readyReplicas=4, updatedReplicas=1)
    sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 2
    health = object_health(sts)
    assert (health.status, health.message) == (
        PROGRESSING, "Waiting for partitioned roll out to finish: 1 out of 2 new pods have been updated...",
    )
    sts["status"]["updatedReplicas"] = 2  # the pods below the partition keep the old revision on purpose
    assert status_of(sts) is HEALTHY


def test_ondelete_statefulset_is_healthy_with_pods_on_the_old_revision() -> None:
    sts = recorded("statefulset-healthy")
    sts["spec"]["updateStrategy"] = {"type": "OnDelete"}
    sts["status"].update(updateRevision="db-new", updatedReplicas=0)
    health = object_health(sts)
    assert (health.status, health.message) == (HEALTHY, "statefulset has 2 ready pods (0 updated)")


def test_rolling_statefulset_without_partition_waits_for_the_update_revision() -> None:
    sts = recorded("statefulset-healthy")
    sts["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    sts["status"]["updateRevision"] = "db-new"
    assert status_of(sts) is PROGRESSING
    sts["status"]["currentRevision"] = "db-new"
    assert status_of(sts) is HEALTHY


# ------------------------------------------------------------------ DaemonSet and ReplicaSet


def test_rolled_out_daemonset_is_healthy() -> None:
    assert status_of(recorded("daemonset-healthy")) is HEALTHY


def test_daemonset_updating_or_unavailable_is_progressing() -> None:
    ds = recorded("daemonset-healthy")
    ds["status"]["updatedNumberScheduled"] = 1
    assert "1 out of 3 new pods have been updated" in object_health(ds).message
    ds = recorded("daemonset-healthy")
    ds["status"]["numberAvailable"] = 2
    assert "2 of 3 updated pods are available" in object_health(ds).message
    ds["metadata"]["generation"] = 5
    assert "observed daemon set generation" in object_health(ds).message


def test_ondelete_daemonset_is_healthy_while_pods_are_old() -> None:
    ds = recorded("daemonset-healthy")
    ds["spec"]["updateStrategy"] = {"type": "OnDelete"}
    ds["status"]["updatedNumberScheduled"] = 0
    assert status_of(ds) is HEALTHY


def test_replicaset_checks() -> None:
    assert status_of(recorded("replicaset-healthy")) is HEALTHY
    rs = recorded("replicaset-healthy")
    rs["status"]["availableReplicas"] = 1
    assert object_health(rs).message == "Waiting for rollout to finish: 1 out of 2 new replicas are available..."
    rs["status"]["conditions"] = [condition("ReplicaFailure", "True", "FailedCreate", "pods are forbidden: quota")]
    assert object_health(rs) == Health(DEGRADED, "pods are forbidden: quota")


# ------------------------------------------------------------------ Pod


def test_running_ready_pod_is_healthy_and_pending_pod_is_progressing() -> None:
    assert status_of(recorded("pod-running-ready")) is HEALTHY
    pending = object_health(recorded("pod-pending-unschedulable"))
    assert pending.status is PROGRESSING


def test_succeeded_pod_is_healthy() -> None:
    assert status_of(recorded("pod-succeeded")) is HEALTHY


def crash_looping(reason: str, restart_policy: str = "Always") -> dict[str, Any]:
    pod = recorded("pod-running-ready")
    pod["spec"]["restartPolicy"] = restart_policy
    pod["status"]["conditions"] = [condition("Ready", "False", "ContainersNotReady")]
    pod["status"]["containerStatuses"][0].update(
        ready=False, state={"waiting": {"reason": reason, "message": "back-off 5m0s restarting failed container"}},
    )
    return pod


def test_crash_looping_pod_is_degraded_with_the_reason() -> None:
    health = object_health(crash_looping("CrashLoopBackOff"))
    assert health.status is DEGRADED
    assert health.message == "container 'main': CrashLoopBackOff: back-off 5m0s restarting failed container"


def test_image_pull_failures_are_degraded() -> None:
    for reason in ("ImagePullBackOff", "ErrImagePull", "CreateContainerConfigError"):
        assert status_of(crash_looping(reason)) is DEGRADED, reason
    assert status_of(crash_looping("ContainerCreating")) is PROGRESSING


def test_hook_pod_in_backoff_is_not_degraded_because_it_may_still_run() -> None:
    pod = crash_looping("ImagePullBackOff", restart_policy="Never")
    pod["status"]["phase"] = "Pending"
    assert status_of(pod) is PROGRESSING


def test_running_pod_that_should_finish_is_progressing_unless_annotated() -> None:
    pod = recorded("pod-running-ready")
    pod["spec"]["restartPolicy"] = "OnFailure"
    assert status_of(pod) is PROGRESSING
    pod["metadata"]["annotations"] = {"argocd.argoproj.io/ignore-restart-policy": "true"}
    assert status_of(pod) is HEALTHY


def test_running_pod_not_ready_after_a_restart_is_degraded() -> None:
    pod = recorded("pod-running-ready")
    pod["status"]["conditions"] = [condition("Ready", "False")]
    assert status_of(pod) is PROGRESSING
    pod["status"]["containerStatuses"][0]["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
    assert status_of(pod) is DEGRADED


def test_failed_pod_is_degraded_with_the_best_message() -> None:
    pod = recorded("pod-succeeded")
    pod["status"]["phase"] = "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    terminated.update(exitCode=3, reason="Error")
    terminated.pop("message", None)
    assert object_health(pod).message == "container 'main' failed with exit code 3"
    terminated["reason"] = "OOMKilled"
    assert object_health(pod).message == "OOMKilled"
    pod["status"]["message"] = "Pod was evicted"
    assert object_health(pod) == Health(DEGRADED, "Pod was evicted")


def test_pod_in_an_unknown_phase_is_unknown() -> None:
    pod = recorded("pod-running-ready")
    pod["status"]["phase"] = "Unknown"
    assert status_of(pod) is UNKNOWN


# ------------------------------------------------------------------ Job and CronJob


def test_complete_job_is_healthy() -> None:
    assert status_of(recorded("job-complete")) is HEALTHY


def test_running_job_is_progressing() -> None:
    job = recorded("job-complete")
    job["status"] = {"active": 1, "ready": 1}
    assert object_health(job) == Health(PROGRESSING, "Job is running: 1 active, 0 succeeded")


def test_failed_job_is_degraded_with_the_reason() -> None:
    job = recorded("job-complete")
    job["status"]["conditions"] = [
        condition("FailureTarget", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
        condition("Failed", "True", "BackoffLimitExceeded", "Job has reached the specified backoff limit"),
    ]
    health = object_health(job)
    assert (health.status, health.message) == (DEGRADED, "Job has reached the specified backoff limit")


def test_suspended_job_is_suspended_and_a_resumed_one_runs() -> None:
    job = recorded("job-complete")
    job["spec"]["suspend"] = True
    job["status"] = {"conditions": [condition("Suspended", "True", "JobSuspended", "Job suspended")]}
    assert object_health(job) == Health(SUSPENDED, "Job suspended")
    job["spec"]["suspend"] = False
    job["status"] = {"active": 1, "conditions": [condition("Suspended", "False", "JobResumed", "Job resumed")]}
    assert status_of(job) is PROGRESSING


def test_cronjob_checks() -> None:
    fresh = object_health(recorded("cronjob-never-scheduled"))
    assert (fresh.status, fresh.message) == (HEALTHY, "CronJob has not been scheduled yet")
    cron = recorded("cronjob-never-scheduled")
    cron["spec"]["suspend"] = True
    assert status_of(cron) is SUSPENDED
    cron = recorded("cronjob-never-scheduled")
    cron["status"] = {"lastScheduleTime": "2026-11-26T03:00:00Z", "lastSuccessfulTime": "2026-11-25T03:00:41Z"}
    assert status_of(cron) is DEGRADED
    cron["status"]["active"] = [{"kind": "Job", "name": "nightly-1"}]
    assert status_of(cron) is HEALTHY
    cron["status"] = {"lastScheduleTime": "2026-11-26T03:00:00Z", "lastSuccessfulTime": "2026-11-26T03:00:41Z"}
    assert object_health(cron).message == "CronJob has completed its last execution successfully"
    del cron["status"]
    assert status_of(cron) is PROGRESSING
