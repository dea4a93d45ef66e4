"""Who asked for a sync: from the API request to the operation, the history entry and the snapshot."""

from __future__ import annotations

from dataclasses import replace

from agent.controller.initiator import credit_initiator
from agent.model import AppState, HistoryEntry, OperationPhase, OperationRequest, Revision, SyncOperation, SyncTrigger
from agent.state import state_from_dict, state_to_dict

REVISION = Revision("a" * 40, "main", "Jane", "bump")


def entry(number: int, initiated_by: str = "") -> HistoryEntry:
    return HistoryEntry(id=number, revision=REVISION.sha, author="Jane", message="bump", trigger=SyncTrigger.MANUAL,
                        started=1.0, finished=2.0, phase=OperationPhase.SUCCEEDED, initiated_by=initiated_by)


def test_a_sync_ending_in_the_same_reconcile_credits_the_requester() -> None:
    base = replace(AppState.new("api"), history=(entry(1),))
    after = replace(base, history=(entry(2), entry(1)))
    credited = credit_initiator(base, after, OperationRequest(initiated_by="alice"))
    assert [e.initiated_by for e in credited.history] == ["alice", ""]


def test_a_stepped_sync_carries_the_requester_to_its_end() -> None:
    base = AppState.new("api")
    running = replace(base, operation=SyncOperation(REVISION, SyncTrigger.MANUAL, prune=False, manual=True,
                                                    started=1.0))
    step_one = credit_initiator(base, running, OperationRequest(initiated_by="ci-bot"))
    assert step_one.operation is not None and step_one.operation.initiated_by == "ci-bot"
    ended = replace(step_one, operation=None, history=(entry(1),))
    assert credit_initiator(step_one, ended, None).history[0].initiated_by == "ci-bot"


def test_automated_syncs_name_nobody() -> None:
    base = AppState.new("api")
    after = replace(base, history=(entry(1),))
    assert credit_initiator(base, after, None) is after


def test_the_snapshot_keeps_it_and_reads_older_records_without_it() -> None:
    operation = SyncOperation(REVISION, SyncTrigger.ROLLBACK, prune=True, manual=True, started=1.0,
                              initiated_by="carol")
    state = replace(AppState.new("api"), history=(entry(1, "carol"),), operation=operation)
    restored = state_from_dict("api", state_to_dict(state))
    assert restored.history[0].initiated_by == "carol"
    assert restored.operation is not None and restored.operation.initiated_by == "carol"
    old = state_to_dict(state)
    del old["history"][0]["initiated_by"]
    del old["operation"]["initiated_by"]
    assert state_from_dict("api", old).history[0].initiated_by == ""
