"""What the helpers of the controller (adoption, removal, the apps' loops) need of it.

A Protocol, so that they name the Controller's parts without importing the Controller
(agent.controller.controller), which imports them.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from agent.config import Settings
from agent.controller.apps import AppTable
from agent.controller.projects import ProjectTable
from agent.controller.reconcile import AppReconciler
from agent.controller.worker import AppWorker
from agent.errors import AgentError


class ControllerParts(Protocol):
    settings: Settings
    reconciler: AppReconciler
    apps: AppTable
    projects: ProjectTable
    reload_lock: asyncio.Lock
    running: bool

    def runs(self, name: str) -> bool: ...

    async def restore(self) -> None: ...

    async def ensure_inventory(self, worker: AppWorker) -> AgentError | None: ...

    def spawn_loop(self, worker: AppWorker) -> None: ...

    async def cancel_loop(self, worker: AppWorker, why: str) -> None: ...

    def request_refresh(self, name: str) -> bool: ...
