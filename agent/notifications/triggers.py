"""Which triggers fire when an app's state moves from one stored value to the next. Pure.

    moments(app, previous, current)     the app as conditions should see it: the stored state,
                                        preceded by the sync's start when a sync started and
                                        ended within one reconcile (so `on-sync-running` is
                                        not missed because it was never stored)
    decide(triggers, moments, marks)    fired triggers and the marks to store

The marks (`AppState.notified`, trigger → oncePer value) are what makes a notification go
out once. A trigger fires when its condition holds and its oncePer value differs from its
mark; the mark becomes that value. When the condition does not hold, the mark is kept if
it equals the current oncePer value (a retry of a failed revision runs again, and passes
through Running, without a second "failed"), and dropped otherwise: a trigger without
oncePer re-arms (Degraded → Healthy → Degraded is told twice), and one whose revision
moved on may fire for an earlier revision again (a rollback is news). This is Argo CD's
rule, except that Argo CD keeps every value it ever sent, so a rollback to a revision it
had reported was never reported.

Marks of None mean "never evaluated" (a snapshot written before notifications existed, or
a lost one): the first decision records what holds and sends nothing.

A condition that fails to evaluate leaves its mark as it was (no doubt re-arms anything)
and is reported as a problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from agent.model import AppState, HistoryEntry, OperationPhase, Revision, SyncOperation, SyncStatus, SyncTrigger
from agent.notifications.context import AppDefinition, app_context
from agent.notifications.expressions import RUNTIME_ERRORS
from agent.notifications.settings import TriggerSpec

Moment = Mapping[str, Any]  # what a condition sees: {"app": ..., "context": ...}


@dataclass(frozen=True)
class Fired:
    trigger: str
    key: str  # the oncePer value ("" without one)
    moment: int  # index into the moments: which state the templates render


@dataclass(frozen=True)
class Decision:
    marks: dict[str, str]
    fired: tuple[Fired, ...] = ()
    problems: tuple[str, ...] = ()  # `trigger: what failed`, for the log


def moments(app: AppDefinition, previous: AppState, current: AppState, *, context: Mapping[str, str],
            deleted_at: float | None = None) -> list[dict[str, Any]]:
    """The states to evaluate, oldest first. `deleted_at`: the app left the configuration then."""
    states = []
    started = unseen_start(previous, current)
    if started is not None:
        states.append(running(previous, current, started))
    states.append(current)
    shared = dict(context)
    return [{"app": app_context(app, state, deleted_at=deleted_at), "context": shared} for state in states]


def unseen_start(previous: AppState, current: AppState) -> HistoryEntry | None:
    """The sync that ended in `current` if its start was never stored (it began and ended in one
    reconcile); None otherwise."""
    if current.operation is not None or not current.history:
        return None
    latest = current.history[0]
    if previous.history and previous.history[0] == latest:
        return None  # not a new sync
    if previous.operation is not None and previous.operation.started == latest.started:
        return None  # its Running state was stored
    return latest


def running(previous: AppState, current: AppState, entry: HistoryEntry) -> AppState:
    """The app as it was when the sync `entry` started: the previous state with the sync in progress."""
    known = current.status.revision
    revision = known if known is not None and known.sha == entry.revision else \
        Revision(entry.revision, author=entry.author, message=entry.message)
    operation = SyncOperation(revision, entry.trigger, prune=False,
                              manual=entry.trigger not in (SyncTrigger.AUTO, SyncTrigger.WEBHOOK),
                              started=entry.started)
    status = replace(previous.status, sync_status=SyncStatus.OUT_OF_SYNC, revision=revision,
                     operation_phase=OperationPhase.RUNNING, reconciled_at=entry.started)
    return replace(previous, status=status, operation=operation)


def decide(triggers: Sequence[TriggerSpec], moments_: Sequence[Moment], marks: Mapping[str, str] | None) -> Decision:
    names = {trigger.name for trigger in triggers}
    current = {name: value for name, value in (marks or {}).items() if name in names}  # forget removed triggers
    fired: list[Fired] = []
    problems: list[str] = []
    for index, moment in enumerate(moments_):
        for trigger in triggers:
            try:
                holds = trigger.when.holds(moment)
                key = trigger.once_per.key(moment) if trigger.once_per is not None else ""
            except RUNTIME_ERRORS as exc:
                problems.append(f"{trigger.name}: {type(exc).__name__}: {exc}")
                continue
            mark = current.get(trigger.name)
            if holds and mark != key:
                current[trigger.name] = key
                if marks is not None:
                    fired.append(Fired(trigger.name, key, index))
            elif not holds and mark is not None and not (key and key == mark):
                del current[trigger.name]
    return Decision(current, tuple(fired), tuple(dict.fromkeys(problems)))
