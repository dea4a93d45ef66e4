"""Automated sync: when a new revision or drift is synced, and how failed syncs are retried."""

from agent.engine.autosync import LastSync, decide
from agent.model import OperationPhase, RetryPolicy, SyncPolicy


def test_new_revision_syncs_and_drift_needs_self_heal() -> None:
    synced = LastSync("aaa", OperationPhase.SUCCEEDED, 1, 100.0)
    assert decide(SyncPolicy(), out_of_sync=True, revision="bbb", last=synced, now=200).sync
    assert decide(SyncPolicy(), out_of_sync=True, revision="bbb", last=None, now=200).sync
    drift = decide(SyncPolicy(), out_of_sync=True, revision="aaa", last=synced, now=200)
    assert not drift.sync and "self-heal is off" in drift.reason
    assert decide(SyncPolicy(self_heal=True), out_of_sync=True, revision="aaa", last=synced, now=200).sync
    assert not decide(SyncPolicy(self_heal=True), out_of_sync=False, revision="aaa", last=synced, now=200).sync
    assert not decide(SyncPolicy(automated=False), out_of_sync=True, revision="bbb", last=synced, now=200).sync


def test_failed_revision_is_retried_with_backoff_up_to_the_limit() -> None:
    policy = SyncPolicy(retry=RetryPolicy(limit=2, backoff_duration=5, backoff_factor=2, backoff_max_duration=60))
    first = LastSync("aaa", OperationPhase.FAILED, 1, 100.0)
    waiting = decide(policy, out_of_sync=True, revision="aaa", last=first, now=102)
    assert not waiting.sync and waiting.retry_at == 105.0
    assert decide(policy, out_of_sync=True, revision="aaa", last=first, now=105).sync
    second = LastSync("aaa", OperationPhase.FAILED, 2, 200.0)
    assert decide(policy, out_of_sync=True, revision="aaa", last=second, now=209).retry_at == 210.0
    exhausted = decide(policy, out_of_sync=True, revision="aaa", last=LastSync("aaa", OperationPhase.FAILED, 3, 300),
                       now=10_000)
    assert not exhausted.sync and "failed 3 times" in exhausted.reason
    assert decide(SyncPolicy(), out_of_sync=True, revision="aaa", last=first, now=10_000).sync is False
    assert decide(policy, out_of_sync=True, revision="new", last=exhausted and LastSync(
        "aaa", OperationPhase.FAILED, 3, 300), now=301).sync


def test_retry_delay_grows_and_is_capped() -> None:
    retry = RetryPolicy(limit=5, backoff_duration=5, backoff_factor=2, backoff_max_duration=30)
    assert [retry.delay(n) for n in range(1, 6)] == [5, 10, 20, 30, 30]
