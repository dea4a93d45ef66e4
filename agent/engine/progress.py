"""A sync operation as one step advances it, and what a step hands back: the operation moved on,
and, once it has ended, the result of the whole sync."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from agent.model import Change, ChangeSet, Hook, HookRun, KubeObject, ObjectRef, OperationPhase, SyncOperation


@dataclass(frozen=True)
class SyncResult:
    """A finished sync operation."""

    phase: OperationPhase
    revision: str
    changes: ChangeSet
    message: str = ""
    started: float = 0.0
    finished: float = 0.0
    responses: Mapping[ObjectRef, KubeObject] = field(default_factory=dict)  # what each apply returned
    hooks: tuple[HookRun, ...] = ()  # every hook the sync ran, with its result


@dataclass(frozen=True)
class Step:
    """What one step did: the operation advanced, and its result once it ended."""

    operation: SyncOperation
    result: SyncResult | None = None


class SyncFailed(Exception):
    """A step failed; the message names the object (or hook) and the reason."""


class Progress:
    """The operation as one step advances it, with the changes, writes and hook runs made so far."""

    def __init__(self, operation: SyncOperation) -> None:
        self.op = operation
        self.started = operation.started
        self.changes = list(operation.changes)
        self.written = dict(operation.written)
        self.runs = list(operation.hooks)

    def add(self, change: Change) -> None:
        self.changes.append(change)

    def wrote(self, ref: ObjectRef, response: KubeObject) -> None:
        self.written[ref] = response

    def run_of(self, hook: Hook) -> HookRun | None:
        return next((run for run in self.runs if hook.runs_as(run)), None)

    def record(self, run: HookRun) -> None:
        """Keep a hook's run, replacing its earlier state."""
        for index, known in enumerate(self.runs):
            if known.phase is run.phase and known.template == run.template:
                self.runs[index] = run
                return
        self.runs.append(run)

    def step(self) -> Step:
        return Step(replace(self.op, changes=tuple(self.changes), written=self.written, hooks=tuple(self.runs)))

    def finish(self, phase: OperationPhase, message: str, now: float) -> Step:
        operation = replace(self.op, changes=tuple(self.changes), written=self.written, waiting_since=None,
                            message=message, hooks=tuple(self.runs))
        result = SyncResult(phase, operation.revision.sha, ChangeSet(tuple(self.changes)), message,
                            self.started, now, self.written, tuple(self.runs))
        return Step(operation, result)
