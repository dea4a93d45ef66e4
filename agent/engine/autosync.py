"""Whether to sync now: automated policy, self-heal and retries, as Argo CD decides. Pure."""

from __future__ import annotations

from dataclasses import dataclass

from agent.model import AutoSyncPause, LastSync, OperationPhase, SyncPolicy

__all__ = ["LastSync", "SyncDecision", "decide", "held_by_window", "retry_due", "still_paused"]


@dataclass(frozen=True)
class SyncDecision:
    sync: bool
    reason: str
    retry_at: float | None = None  # when a retry becomes due, if one is waiting (or a window opens)
    window: str = ""  # a sync was due and a sync window holds it: which, and until when


def decide(policy: SyncPolicy, *, out_of_sync: bool, revision: str, last: LastSync | None,
           now: float, paused: AutoSyncPause | None = None) -> SyncDecision:
    """Automated sync: a new revision always syncs; drift on the same revision only with self-heal;
    a failed revision is retried per the retry policy and then left alone until a new commit.
    While paused (after a rollback) nothing syncs on its own."""
    if not out_of_sync:
        return SyncDecision(False, "in sync")
    if not policy.automated:
        return SyncDecision(False, "automated sync is off; sync manually")
    if paused is not None:
        return SyncDecision(False, f"auto-sync paused: {paused.reason}; resumes on a new commit or on request")
    if last is None or last.revision != revision:
        return SyncDecision(True, "new revision")
    if last.phase is OperationPhase.SUCCEEDED:
        if policy.self_heal:
            return SyncDecision(True, "self-heal: live state drifted from the revision")
        return SyncDecision(False, "live state drifted; self-heal is off")
    due = retry_due(policy, last)
    if due is None:
        return SyncDecision(
            False, f"sync of {revision[:7]} failed {last.attempts} times; waiting for a new commit or a manual sync"
        )
    retry = f"retry {last.attempts} of {policy.retry.limit}"
    if now < due:
        return SyncDecision(False, f"{retry} is due later", retry_at=due)
    return SyncDecision(True, retry)


def retry_due(policy: SyncPolicy, last: LastSync | None) -> float | None:
    """When the automated retry of the last sync falls due: None when it succeeded, or no retry is left."""
    if not policy.automated or last is None or last.phase is OperationPhase.SUCCEEDED:
        return None
    if last.attempts - 1 >= policy.retry.limit:
        return None
    return last.finished + policy.retry.delay(last.attempts)


def held_by_window(decision: SyncDecision, *, blocked: str, opens_at: float | None) -> SyncDecision:
    """An automated sync that a project's sync window blocks (`blocked`: why) does not start. Nothing
    is recorded as an attempt, so retries and their backoff stay as they were; the app is looked at
    again when the window opens (`opens_at`, None: not within the horizon)."""
    if not decision.sync or not blocked:
        return decision
    return SyncDecision(False, blocked, retry_at=opens_at, window=blocked)


def still_paused(pause: AutoSyncPause | None, tracked_sha: str) -> AutoSyncPause | None:
    """The pause after the tracked revision resolved to `tracked_sha`: None once a new commit arrived.

    A pause taken before the tracked revision was ever resolved learns the commit now, so
    only a later commit resumes it.
    """
    if pause is None:
        return None
    if not pause.tracked_sha:
        return AutoSyncPause(pause.reason, tracked_sha, pause.since)
    return None if tracked_sha != pause.tracked_sha else pause
