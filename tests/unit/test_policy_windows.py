"""Sync windows with an injected clock: Argo CD's allow/deny rules, manual syncs, time zones, openings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.model import SyncWindow
from agent.policy import InvalidWindow, check_window, decide
from agent.policy.windows import matching, parse_go_duration

NIGHT_DENY = SyncWindow(kind="deny", schedule="0 22 * * *", duration="8h", applications=("*",))
OFFICE_ALLOW = SyncWindow(kind="allow", schedule="0 9 * * 1-5", duration="8h", namespaces=("payments*",))


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def test_no_matching_window_allows() -> None:
    other = SyncWindow(kind="deny", schedule="* * * * *", duration="1h", applications=("ledger-*",))
    decision = decide([other], app="payment-service", namespace="payments", now=at("2026-03-02T23:00"), manual=False)
    assert decision.allowed and decision.reason == ""


def test_an_active_deny_window_blocks_and_says_when_it_opens() -> None:
    decision = decide([NIGHT_DENY], app="api", namespace="payments", now=at("2026-03-02T23:30"), manual=False,
                      project="payments-team")
    assert not decision.allowed
    assert decision.opens_at == at("2026-03-03T06:00")
    assert decision.reason == ("sync blocked by deny window '0 22 * * *' for 8h (UTC) of project payments-team; "
                               "syncs are allowed again at 2026-03-03T06:00:00+00:00")
    assert decide([NIGHT_DENY], app="api", namespace="payments", now=at("2026-03-03T06:00"), manual=False).allowed


def test_manual_sync_passes_a_deny_window_only_with_manual_sync() -> None:
    now = at("2026-03-02T23:30")
    assert not decide([NIGHT_DENY], app="api", namespace="payments", now=now, manual=True).allowed
    lenient = SyncWindow(kind="deny", schedule="0 22 * * *", duration="8h", applications=("*",), manual_sync=True)
    assert decide([lenient], app="api", namespace="payments", now=now, manual=True).allowed
    assert not decide([lenient], app="api", namespace="payments", now=now, manual=False).allowed
    assert not decide([lenient, NIGHT_DENY], app="api", namespace="payments", now=now, manual=True).allowed, \
        "every active deny window must allow manual syncs"


def test_allow_windows_allow_only_while_active() -> None:
    inside = at("2026-03-02T10:00")  # a Monday
    outside = at("2026-03-02T18:30")
    assert decide([OFFICE_ALLOW], app="api", namespace="payments", now=inside, manual=False).allowed
    closed = decide([OFFICE_ALLOW], app="api", namespace="payments", now=outside, manual=False)
    assert not closed.allowed and closed.opens_at == at("2026-03-03T09:00")
    friday_evening = decide([OFFICE_ALLOW], app="api", namespace="payments", now=at("2026-03-06T18:00"),
                            manual=False)
    assert friday_evening.opens_at == at("2026-03-09T09:00"), "over the weekend to Monday"


def test_an_active_deny_beats_an_active_allow() -> None:
    tea = SyncWindow(kind="deny", schedule="0 15 * * *", duration="1h", namespaces=("payments",))
    decision = decide([OFFICE_ALLOW, tea], app="api", namespace="payments", now=at("2026-03-02T15:30"), manual=False)
    assert not decision.allowed and decision.opens_at == at("2026-03-02T16:00")
    # Both end at 17:00: then the allow window is closed, until the next morning.
    late = SyncWindow(kind="deny", schedule="0 16 * * *", duration="1h", namespaces=("payments",))
    decision = decide([OFFICE_ALLOW, late], app="api", namespace="payments", now=at("2026-03-02T16:30"), manual=False)
    assert not decision.allowed and decision.opens_at == at("2026-03-03T09:00")


def test_time_zone_moves_the_schedule() -> None:
    berlin = SyncWindow(kind="deny", schedule="0 22 * * *", duration="1h", applications=("*",),
                        time_zone="Europe/Berlin")
    assert not decide([berlin], app="a", namespace="n", now=at("2026-01-15T21:30"), manual=False).allowed  # 22:30 CET
    assert decide([berlin], app="a", namespace="n", now=at("2026-01-15T22:30"), manual=False).allowed
    assert not decide([berlin], app="a", namespace="n", now=at("2026-07-15T20:30"), manual=False).allowed  # CEST


def test_windows_match_by_application_cluster_or_namespace() -> None:
    by_cluster = SyncWindow(kind="deny", schedule="* * * * *", duration="1h", clusters=("in-cluster",))
    by_server = SyncWindow(kind="deny", schedule="* * * * *", duration="1h", clusters=("https://kubernetes.*",))
    elsewhere = SyncWindow(kind="deny", schedule="* * * * *", duration="1h", clusters=("prod-eu",))
    found = matching([NIGHT_DENY, OFFICE_ALLOW, by_cluster, by_server, elsewhere], app="api", namespace="ledger")
    assert found == (NIGHT_DENY, by_cluster, by_server)


def test_a_window_that_cannot_be_read_blocks() -> None:
    broken = SyncWindow(kind="deny", schedule="not cron", duration="1h", applications=("*",))
    decision = decide([broken], app="a", namespace="n", now=at("2026-01-01T00:00"), manual=True, project="p")
    assert not decision.allowed and "sync windows of project p cannot be read" in decision.reason


@pytest.mark.parametrize(("window", "message"), [
    (SyncWindow(kind="maybe", schedule="* * * * *", duration="1h", applications=("*",)), "kind 'maybe'"),
    (SyncWindow(kind="deny", schedule="0 22 * *", duration="1h", applications=("*",)), "five fields"),
    (SyncWindow(kind="deny", schedule="0 25 * * *", duration="1h", applications=("*",)), "not a cron expression"),
    (SyncWindow(kind="deny", schedule="0 22 * * *", duration="8 hours", applications=("*",)), "not a duration"),
    (SyncWindow(kind="deny", schedule="0 22 * * *", duration="1h", applications=("*",), time_zone="Mars/Base"),
     "time zone 'Mars/Base' is not known"),
    (SyncWindow(kind="deny", schedule="0 22 * * *", duration="1h"), "needs applications, namespaces or clusters"),
])
def test_check_window_names_the_problem(window: SyncWindow, message: str) -> None:
    with pytest.raises(InvalidWindow, match=message):
        check_window(window)


def test_go_durations() -> None:
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5h") == 5400
    assert parse_go_duration("90s") == 90
