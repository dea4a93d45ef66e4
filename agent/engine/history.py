"""An app's sync history: bounded, newest first, and which entry a rollback goes back to. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from agent.model import ChangeSet, HistoryEntry, HookRun, OperationPhase, Revision, SyncTrigger

DEFAULT_HISTORY_LIMIT = 50
MIN_PREFIX = 4  # shortest revision prefix a rollback accepts


class RollbackRefused(Exception):
    """No revision to roll back to, or not one from the history."""


def history_entry(previous: Sequence[HistoryEntry], *, revision: Revision, trigger: SyncTrigger,
                  phase: OperationPhase, started: float, finished: float, changes: ChangeSet,
                  initiated_by: str = "", hooks: tuple[HookRun, ...] = ()) -> HistoryEntry:
    counts = changes.counts()
    return HistoryEntry(
        id=(previous[0].id + 1) if previous else 1, revision=revision.sha, author=revision.author,
        message=revision.message, trigger=trigger, started=started, finished=finished, phase=phase,
        created=counts["created"], configured=counts["configured"], pruned=counts["pruned"],
        failed=counts["failed"], initiated_by=initiated_by, hooks=hooks,
    )


def append_history(history: Sequence[HistoryEntry], entry: HistoryEntry,
                   limit: int = DEFAULT_HISTORY_LIMIT) -> tuple[HistoryEntry, ...]:
    """`entry` first, then the newest of the rest, `limit` entries at most."""
    return (entry, *history)[:max(limit, 1)]


def rollback_target(history: Sequence[HistoryEntry], requested: str | None) -> HistoryEntry:
    """The entry to roll back to.

    With `requested` (a full SHA or a prefix of at least 4 hex digits), the newest
    entry of that revision that succeeded. Without, the previous successful revision:
    the newest successful entry whose revision differs from the latest sync's (so a
    failed latest sync rolls back to the last good one, a good one to the one before).
    """
    if requested is not None:
        wanted = requested.strip().lower()
        if len(wanted) < MIN_PREFIX:
            raise RollbackRefused(f"revision {requested!r} is too short: give at least {MIN_PREFIX} hex digits")
        matches = [e for e in history if e.revision.startswith(wanted)]
        if not matches:
            raise RollbackRefused(f"revision {requested} is not in the sync history")
        if len({e.revision for e in matches}) > 1:
            raise RollbackRefused(f"revision {requested} is ambiguous in the sync history")
        good = [e for e in matches if e.phase is OperationPhase.SUCCEEDED]
        if not good:
            raise RollbackRefused(f"revision {requested} never synced successfully")
        return good[0]
    if not history:
        raise RollbackRefused("the sync history is empty")
    current = history[0].revision
    for entry in history:
        if entry.revision != current and entry.phase is OperationPhase.SUCCEEDED:
            return entry
    raise RollbackRefused(f"no successful sync of a revision other than {current[:7]} in the history")
