"""Per-app reconcile and the scheduling around it."""

from agent.controller.controller import Controller
from agent.controller.reconcile import Reconciler, ReconcileResult
from agent.controller.revisions import RevisionRefused
from agent.controller.worker import QueueFull
from agent.engine.history import RollbackRefused

__all__ = ["Controller", "QueueFull", "ReconcileResult", "Reconciler", "RevisionRefused", "RollbackRefused"]
