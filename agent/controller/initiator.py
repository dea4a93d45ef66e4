"""Who asked for a sync, carried from the request to the operation and into the history entry.

The reconcile plans and records syncs without knowing who asked; the controller, which
hands it the request, credits the person on what comes back: the operation the request
started (it may run over several reconciles) and the history entry written when it ends.
"""

from __future__ import annotations

from dataclasses import replace

from agent.model import AppState, OperationRequest


def credit_initiator(base: AppState, next_state: AppState, request: OperationRequest | None) -> AppState:
    """`next_state` with the operation and a new history entry naming who asked (Argo CD's `initiatedBy`)."""
    asked_by = base.operation.initiated_by if base.operation is not None else request.initiated_by if request else ""
    if not asked_by:
        return next_state
    operation = next_state.operation
    if operation is not None and base.operation is None and not operation.initiated_by:
        next_state = replace(next_state, operation=replace(operation, initiated_by=asked_by))
    history = next_state.history
    new_entry = bool(history) and (not base.history or history[0].id != base.history[0].id)
    if new_entry and not history[0].initiated_by:
        next_state = replace(next_state, history=(replace(history[0], initiated_by=asked_by), *history[1:]))
    return next_state
