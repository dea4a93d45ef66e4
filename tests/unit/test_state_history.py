"""Sync history, rollback targets and the auto-sync pause: pure decisions."""

from __future__ import annotations

import pytest

from agent.config import parse_settings
from agent.engine.autosync import decide, still_paused
from agent.engine.history import RollbackRefused, append_history, history_entry, rollback_target
from agent.errors import ConfigError
from agent.model import (
    AutoSyncPause,
    Change,
    ChangeAction,
    ChangeSet,
    HistoryEntry,
    LastSync,
    ObjectRef,
    OperationPhase,
    Revision,
    SyncPolicy,
    SyncTrigger,
)

OK, FAILED = OperationPhase.SUCCEEDED, OperationPhase.FAILED


def entry(id_: int, revision: str, phase: OperationPhase = OK) -> HistoryEntry:
    return HistoryEntry(id_, revision * 40 if len(revision) == 1 else revision, "Dev", "msg", SyncTrigger.AUTO,
                        float(id_), float(id_) + 1, phase)


def test_history_entry_counts_what_the_sync_did_and_numbers_increase() -> None:
    ref = ObjectRef("", "ConfigMap", "ns", "a")
    changes = ChangeSet((Change(ref, ChangeAction.CREATED), Change(ref, ChangeAction.CREATED),
                         Change(ref, ChangeAction.PRUNED), Change(ref, ChangeAction.FAILED, "x"),
                         Change(ref, ChangeAction.UNCHANGED)))
    first = history_entry((), revision=Revision("a" * 40, author="Ann <a@x>", message="one"),
                          trigger=SyncTrigger.WEBHOOK, phase=FAILED, started=1.0, finished=2.0, changes=changes)
    assert (first.id, first.revision, first.author, first.message, first.trigger) == (
        1, "a" * 40, "Ann <a@x>", "one", SyncTrigger.WEBHOOK)
    assert (first.created, first.configured, first.pruned, first.failed) == (2, 0, 1, 1)
    second = history_entry((first,), revision=Revision("b" * 40), trigger=SyncTrigger.MANUAL, phase=OK,
                           started=3.0, finished=4.0, changes=ChangeSet())
    assert second.id == 2


def test_history_stays_bounded_newest_first() -> None:
    history: tuple[HistoryEntry, ...] = ()
    for i in range(1, 121):
        history = append_history(history, entry(i, f"{i:040x}"), limit=50)
    assert len(history) == 50
    assert [e.id for e in history[:3]] == [120, 119, 118] and history[-1].id == 71


def test_default_rollback_target_is_the_previous_successful_revision() -> None:
    history = (entry(4, "c"), entry(3, "c"), entry(2, "b", FAILED), entry(1, "a"))
    assert rollback_target(history, None).revision == "a" * 40


def test_after_a_failed_sync_rollback_goes_to_the_last_good_revision() -> None:
    history = (entry(3, "c", FAILED), entry(2, "b"), entry(1, "a"))
    assert rollback_target(history, None).revision == "b" * 40


def test_requested_revision_by_prefix() -> None:
    history = (entry(3, "c"), entry(2, "b"), entry(1, "a"))
    assert rollback_target(history, "bbbb").id == 2
    assert rollback_target(history, "a" * 40).id == 1


@pytest.mark.parametrize(("history", "requested", "reason"), [
    ((), None, "history is empty"),
    ((entry(2, "a"), entry(1, "a")), None, "no successful sync of a revision other than"),
    ((entry(1, "a"),), "abc", "too short"),
    ((entry(1, "a"),), "dddd", "not in the sync history"),
    ((entry(2, "b", FAILED), entry(1, "a")), "bbbb", "never synced successfully"),
    ((entry(2, "ab" + "0" * 38), entry(1, "ab" + "1" * 38)), "ab00", None),
])
def test_rollback_refusals(history: tuple[HistoryEntry, ...], requested: str | None, reason: str | None) -> None:
    if reason is None:
        assert rollback_target(history, requested).id == 2
        return
    with pytest.raises(RollbackRefused, match=reason):
        rollback_target(history, requested)


def test_pause_holds_on_the_same_commit_and_lifts_on_a_new_one() -> None:
    pause = AutoSyncPause("rolled back to aaaaaaa", "b" * 40, 1.0)
    assert still_paused(pause, "b" * 40) is pause
    assert still_paused(pause, "c" * 40) is None
    assert still_paused(None, "c" * 40) is None


def test_pause_taken_before_the_tracked_revision_was_known_learns_it() -> None:
    learned = still_paused(AutoSyncPause("rolled back", "", 1.0), "b" * 40)
    assert learned == AutoSyncPause("rolled back", "b" * 40, 1.0)


def test_paused_app_does_not_sync_on_its_own_even_for_a_new_revision_or_with_self_heal() -> None:
    policy = SyncPolicy(automated=True, self_heal=True)
    pause = AutoSyncPause("rolled back to aaaaaaa", "b" * 40, 1.0)
    last = LastSync("a" * 40, OK, 1, 1.0)
    decision = decide(policy, out_of_sync=True, revision="b" * 40, last=last, now=2.0, paused=pause)
    assert not decision.sync and "auto-sync paused: rolled back to aaaaaaa" in decision.reason
    assert decide(policy, out_of_sync=True, revision="b" * 40, last=last, now=2.0).sync


def test_history_limit_is_an_agent_key() -> None:
    assert parse_settings({}).agent.history_limit == 50
    assert parse_settings({"agent": {"history_limit": 5}}).agent.history_limit == 5
    with pytest.raises(ConfigError, match="history_limit"):
        parse_settings({"agent": {"history_limit": 0}})
