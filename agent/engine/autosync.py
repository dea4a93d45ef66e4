"""Whether to sync now: automated policy, self-heal and retries, as Argo CD decides. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from agent.model import OperationPhase, SyncPolicy


@dataclass(frozen=True)
class LastSync:
    """The latest sync operation of an app, as far as deciding the next one needs it."""

    revision: str
    phase: OperationPhase
    attempts: int  # operations run for this revision since it was first synced or a manual sync
    finished: float


@dataclass(frozen=True)
class SyncDecision:
    sync: bool
    reason: str
    retry_at: float | None = None  # when a retry becomes due, if one is waiting


def decide(policy: SyncPolicy, *, out_of_sync: bool, revision: str, last: LastSync | None,
           now: float) -> SyncDecision:
    """Automated sync: a new revision always syncs; drift on the same revision only with self-heal;
    a failed revision is retried per the retry policy and then left alone until a new commit."""
    if not out_of_sync:
        return SyncDecision(False, "in sync")
    if not policy.automated:
        return SyncDecision(False, "automated sync is off; sync manually")
    if last is None or last.revision != revision:
        return SyncDecision(True, "new revision")
    if last.phase is OperationPhase.SUCCEEDED:
        if policy.self_heal:
            return SyncDecision(True, "self-heal: live state drifted from the revision")
        return SyncDecision(False, "live state drifted; self-heal is off")
    retries_done = last.attempts - 1
    if retries_done >= policy.retry.limit:
        return SyncDecision(
            False, f"sync of {revision[:7]} failed {last.attempts} times; waiting for a new commit or a manual sync"
        )
    due = last.finished + policy.retry.delay(retries_done + 1)
    if now < due:
        return SyncDecision(False, f"retry {retries_done + 1} of {policy.retry.limit} is due later", retry_at=due)
    return SyncDecision(True, f"retry {retries_done + 1} of {policy.retry.limit}")
