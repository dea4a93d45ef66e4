"""Which catalog triggers fire as an app's stored state moves, and that each fires once."""

from __future__ import annotations

import tomllib
from dataclasses import replace

from agent.config import AppSpec, parse_settings
from agent.metrics import Metrics
from agent.model import (
    AppState,
    Condition,
    ConditionType,
    HealthStatus,
    HistoryEntry,
    OperationPhase,
    Revision,
    SyncOperation,
    SyncStatus,
    SyncTrigger,
)
from agent.notifications import Notifications
from agent.notifications.context import app_context
from agent.notifications.settings import NotificationSettings
from agent.notifications.subscriptions import Destination
from agent.notifications.triggers import decide, moments
from agent.state import state_from_dict, state_to_dict
from tests.support.metrics import sample_total

CATALOG = parse_settings({}).notifications
APP = AppSpec(name="payment-service-prod", repo="https://git.example.com/payments/gitops.git", revision="main",
              path="apps/payment-service", namespace="payments")
A, B = "a" * 40, "b" * 40


class Timeline:
    """States stored one after another, as the app table stores them; what fired at each store."""

    def __init__(self, state: AppState | None = None, settings: NotificationSettings = CATALOG) -> None:
        self.state = state or AppState.new(APP.name)
        self.settings = settings
        self.clock = 1000.0

    def store(self, next_state: AppState, *, deleted: bool = False) -> list[str]:
        seen = moments(APP, self.state, next_state, context={}, deleted_at=self.clock if deleted else None)
        decision = decide(self.settings.triggers, seen, self.state.notified)
        self.state = replace(next_state, notified=decision.marks)
        return [fired.trigger for fired in decision.fired]

    def tick(self) -> float:
        self.clock += 10
        return self.clock

    # -- what a reconcile stores ------------------------------------------------------ #

    def compared(self, sync: SyncStatus = SyncStatus.SYNCED, health: HealthStatus = HealthStatus.HEALTHY) -> list[str]:
        status = replace(self.state.status, sync_status=sync, health_status=health, reconciled_at=self.tick())
        return self.store(replace(self.state, status=status))

    def comparison_error(self) -> list[str]:
        status = replace(self.state.status, sync_status=SyncStatus.UNKNOWN, reconciled_at=self.tick(),
                         conditions=(Condition(ConditionType.COMPARISON_ERROR, "git: connection refused"),))
        return self.store(replace(self.state, status=status))

    def started(self, sha: str) -> list[str]:
        """A sync that waits for health: its Running state is stored."""
        at = self.tick()
        operation = SyncOperation(Revision(sha), SyncTrigger.AUTO, prune=True, manual=False, started=at)
        status = replace(self.state.status, sync_status=SyncStatus.OUT_OF_SYNC, revision=Revision(sha),
                         operation_phase=OperationPhase.RUNNING, reconciled_at=at)
        return self.store(replace(self.state, status=status, operation=operation))

    def finished(self, sha: str, phase: OperationPhase, health: HealthStatus = HealthStatus.HEALTHY) -> list[str]:
        """The sync ends: from the stored Running state, or started and ended in this one reconcile."""
        started = self.state.operation.started if self.state.operation else self.tick()
        history = self.state.history
        entry = HistoryEntry(history[0].id + 1 if history else 1, sha, "jane", "deploy", SyncTrigger.AUTO,
                             started, self.tick(), phase)
        failed = phase is not OperationPhase.SUCCEEDED
        status = replace(self.state.status, revision=Revision(sha), operation_phase=phase, health_status=health,
                         sync_status=SyncStatus.OUT_OF_SYNC if failed else SyncStatus.SYNCED, reconciled_at=self.clock,
                         conditions=(Condition(ConditionType.SYNC_ERROR, "Service/payments/api: invalid"),)
                         if failed else ())
        return self.store(replace(self.state, status=status, operation=None, history=(entry, *history)))


def reconciled() -> Timeline:
    """An app created and compared once: Synced and Healthy, nothing ever synced."""
    timeline = Timeline()
    assert timeline.store(timeline.state) == ["on-created"]  # the inventory rebuild before the first reconcile
    assert timeline.compared() == []
    return timeline


def test_a_new_app_is_announced_once_before_its_first_reconcile() -> None:
    timeline = Timeline()
    assert timeline.store(timeline.state) == ["on-created"]
    assert timeline.store(timeline.state) == []
    assert timeline.compared() == []


def test_a_sync_that_starts_and_ends_in_one_reconcile_is_running_then_succeeded_then_deployed() -> None:
    timeline = reconciled()
    assert timeline.finished(A, OperationPhase.SUCCEEDED) == ["on-sync-running", "on-deployed", "on-sync-succeeded"]
    assert timeline.compared() == []
    assert timeline.compared() == []


def test_deployed_waits_for_healthy_and_comes_once_per_revision() -> None:
    timeline = reconciled()
    assert timeline.started(A) == ["on-sync-running"]
    assert timeline.finished(A, OperationPhase.SUCCEEDED, HealthStatus.PROGRESSING) == ["on-sync-succeeded"]
    assert timeline.compared(health=HealthStatus.HEALTHY) == ["on-deployed"]
    assert timeline.compared(health=HealthStatus.DEGRADED) == ["on-health-degraded"]
    assert timeline.compared(health=HealthStatus.HEALTHY) == []
    assert timeline.finished(B, OperationPhase.SUCCEEDED) == ["on-sync-running", "on-deployed", "on-sync-succeeded"]


def test_a_failing_revision_retried_fails_once_and_runs_once() -> None:
    timeline = reconciled()
    assert timeline.started(A) == ["on-sync-running"]
    assert timeline.finished(A, OperationPhase.FAILED) == ["on-sync-failed"]
    assert timeline.started(A) == []  # the first retry waits for health: Running stored again
    assert timeline.finished(A, OperationPhase.FAILED) == []
    assert timeline.finished(A, OperationPhase.FAILED) == []  # a retry refused at once
    assert timeline.finished(A, OperationPhase.ERROR) == []
    assert timeline.compared(SyncStatus.OUT_OF_SYNC) == []


def test_a_new_revision_and_a_later_failure_of_an_earlier_one_are_news() -> None:
    timeline = reconciled()
    assert timeline.finished(A, OperationPhase.FAILED) == ["on-sync-running", "on-sync-failed"]
    assert timeline.finished(B, OperationPhase.SUCCEEDED) == ["on-sync-running", "on-deployed", "on-sync-succeeded"]
    assert timeline.finished(A, OperationPhase.FAILED) == ["on-sync-running", "on-sync-failed"]  # a rollback to A


def test_health_degraded_is_told_each_time_it_degrades() -> None:
    timeline = reconciled()
    assert timeline.compared(health=HealthStatus.DEGRADED) == ["on-health-degraded"]
    assert timeline.compared(health=HealthStatus.DEGRADED) == []
    assert timeline.compared(health=HealthStatus.HEALTHY) == []
    assert timeline.compared(health=HealthStatus.DEGRADED) == ["on-health-degraded"]


def test_sync_status_unknown_comes_once_per_synced_revision() -> None:
    timeline = reconciled()
    assert timeline.comparison_error() == ["on-sync-status-unknown"]  # never synced: no oncePer value
    assert timeline.compared() == []
    assert timeline.comparison_error() == ["on-sync-status-unknown"]  # so it re-armed, as Argo CD does
    assert timeline.finished(A, OperationPhase.SUCCEEDED) == ["on-sync-running", "on-deployed", "on-sync-succeeded"]
    assert timeline.comparison_error() == ["on-sync-status-unknown"]
    assert timeline.compared() == []
    assert timeline.comparison_error() == []  # the same synced revision


def test_removal_is_announced_and_adding_back_is_a_creation() -> None:
    timeline = reconciled()
    assert timeline.store(timeline.state, deleted=True) == ["on-deleted"]
    assert timeline.store(timeline.state) == ["on-created"]


def test_a_restart_from_the_snapshot_repeats_nothing() -> None:
    timeline = reconciled()
    timeline.finished(A, OperationPhase.FAILED)
    timeline.compared(health=HealthStatus.DEGRADED)
    restored = state_from_dict(APP.name, state_to_dict(timeline.state))
    assert restored.notified == timeline.state.notified
    again = Timeline(restored)
    assert again.store(restored) == []
    assert again.finished(A, OperationPhase.FAILED) == []


def test_a_snapshot_from_before_notifications_records_what_holds_and_sends_nothing() -> None:
    timeline = reconciled()
    timeline.finished(A, OperationPhase.FAILED)
    record = state_to_dict(timeline.state)
    del record["notified"]
    old = state_from_dict(APP.name, record)
    assert old.notified is None
    upgraded = Timeline(old)
    assert upgraded.store(old) == []
    assert upgraded.state.notified == {"on-created": "", "on-sync-failed": A}
    assert upgraded.finished(B, OperationPhase.FAILED) == ["on-sync-running", "on-sync-failed"]


def test_a_trigger_without_once_per_fires_each_time_its_condition_becomes_true() -> None:
    settings = parse_settings(tomllib.loads("""
[[notifications.triggers]]
name = "on-out-of-sync"
when = "app.status.sync.status == 'OutOfSync'"
send = ["app-sync-status-unknown"]
""")).notifications
    timeline = Timeline(settings=settings)
    timeline.store(timeline.state)
    assert timeline.compared(SyncStatus.OUT_OF_SYNC) == ["on-out-of-sync"]
    assert timeline.compared(SyncStatus.OUT_OF_SYNC) == []
    assert timeline.compared(SyncStatus.SYNCED) == []
    assert timeline.compared(SyncStatus.OUT_OF_SYNC) == ["on-out-of-sync"]


def test_a_condition_that_fails_at_runtime_keeps_its_mark_and_is_reported() -> None:
    settings = parse_settings(tomllib.loads("""
[[notifications.triggers]]
name = "on-odd"
when = "1 / (app.status.history | length) > 0"
send = ["app-sync-status-unknown"]
""")).notifications
    timeline = Timeline(settings=settings)
    seen = moments(APP, timeline.state, timeline.state, context={})
    decision = decide(settings.triggers, seen, {"on-odd": ""})
    assert decision.marks["on-odd"] == ""  # no doubt re-arms anything
    assert decision.problems == ("on-odd: ZeroDivisionError: division by zero",)


class Counted:
    def __init__(self) -> None:
        self.metrics = Metrics()

    def observe_notification(self, service: str, trigger: str, result: str) -> None:
        self.metrics.observe_notification(service, trigger, result)


def test_each_destination_gets_one_message_however_many_subscriptions_name_it() -> None:
    settings = parse_settings(tomllib.loads("""
[[notifications.services]]
name = "slack"
type = "slack"
token_env = "T"

[[notifications.subscriptions]]
recipients = ["slack:payments", "slack:payments"]
triggers = ["on-sync-failed"]

[[notifications.subscriptions]]
recipients = ["slack:payments", "slack:oncall"]
triggers = ["on-sync-failed"]
applications = ["*-prod"]

[[notifications.subscriptions]]
recipients = ["slack:elsewhere"]
triggers = ["on-sync-failed"]
applications = ["*-dev"]
""")).notifications
    app = replace(APP, annotations=(("notifications.argoproj.io/subscribe.on-sync-failed.slack", "payments;audit"),
                                    ("notifications.argoproj.io/subscribe.on-sync-failed.teams", "x")))
    center = Notifications(settings, observer=Counted())
    timeline = reconciled()
    previous = timeline.state
    timeline.finished(A, OperationPhase.FAILED)
    pending = center.decide(app, previous, timeline.state)
    assert pending is not None
    sent = sorted((d.trigger, d.destination, d.template.name) for d in pending.deliveries)
    assert sent == [("on-sync-failed", Destination("slack", name), "app-sync-failed")
                    for name in ("audit", "oncall", "payments")]  # teams: no such service, reported once


def test_a_poll_that_changes_nothing_is_not_evaluated_again() -> None:
    center = Notifications(CATALOG, observer=Counted())
    state = replace(AppState.new(APP.name), notified={})
    first = center.decide(APP, state, state)
    assert first is not None
    stored = replace(state, notified=first.marks)
    assert center.decide(APP, stored, stored) is None
    assert center.decide(replace(APP, namespace="elsewhere"), stored, stored) is not None  # a reload changed it


def test_the_context_is_shaped_like_an_argo_cd_application() -> None:
    timeline = reconciled()
    timeline.finished(A, OperationPhase.FAILED)
    app = app_context(APP, timeline.state)
    assert app["metadata"]["name"] == "payment-service-prod"
    assert app["spec"]["source"] == {"repoURL": APP.repo, "targetRevision": "main", "path": "apps/payment-service"}
    assert app["spec"]["destination"]["namespace"] == "payments"
    assert app["status"]["sync"] == {"status": "OutOfSync", "revision": A}
    operation = app["status"]["operationState"]
    assert (operation["phase"], operation["syncResult"]["revision"]) == ("Failed", A)
    assert operation["message"] == "Service/payments/api: invalid"
    assert operation["finishedAt"].endswith("Z")


def test_metrics_counter_is_labelled_by_service_trigger_and_result() -> None:
    counted = Counted()
    counted.observe_notification("slack", "on-sync-failed", "sent")
    assert sample_total(counted.metrics, "gitops_agent_notifications_total", service="slack",
                        trigger="on-sync-failed", result="sent") == 1


def test_a_sync_a_window_holds_is_no_news_and_one_a_project_refuses_is_a_failure() -> None:
    timeline = reconciled()
    held = Condition(ConditionType.SYNC_WINDOW_WARNING, "sync blocked by deny window '0 22 * * *' for 8h (UTC) of "
                     "project payments-team; syncs are allowed again at 2026-03-03T06:00:00+00:00")
    for _ in range(3):  # every poll while the window holds: OutOfSync, no operation, no history
        status = replace(timeline.state.status, sync_status=SyncStatus.OUT_OF_SYNC, reconciled_at=timeline.tick(),
                         conditions=(held,))
        assert timeline.store(replace(timeline.state, status=status)) == []
    # A refusal by the project is a sync that failed as a whole (Argo CD's invalid tasks): on-sync-failed.
    assert timeline.finished(B, OperationPhase.FAILED) == ["on-sync-running", "on-sync-failed"]
