"""Per-app scheduling, the app table, and one reconcile."""

from agent.controller.controller import Controller, QueueFull
from agent.controller.reconcile import Outcome, Reconciler, ReconcileResult
from agent.controller.revisions import RevisionRefused
from agent.engine.history import RollbackRefused

__all__ = ["Controller", "Outcome", "QueueFull", "ReconcileResult", "Reconciler", "RevisionRefused",
           "RollbackRefused"]
