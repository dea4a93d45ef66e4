"""Per-app reconcile and the scheduling around it."""

from agent.controller.controller import Controller
from agent.controller.reconcile import Reconciler, ReconcileResult
from agent.engine.history import RollbackRefused

__all__ = ["Controller", "ReconcileResult", "Reconciler", "RollbackRefused"]
