"""Named, guarded background tasks (a failure or an unexpected exit is logged, never lost), and
bounded fan-out of awaitables."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class TaskSet:
    """Owns a set of long-running tasks; `shutdown` cancels them and reports stragglers."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._named: dict[str, asyncio.Task[Any]] = {}  # the latest task of each name
        self._closing = False

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        # A context of its own: a long-running task started during one app's reconcile (a
        # watch) must not carry what that reconcile set, e.g. whose requests to count.
        task = asyncio.create_task(coro, name=name, context=contextvars.Context())
        self._tasks.add(task)
        self._named[name] = task
        task.add_done_callback(self._finished)
        return task

    def named(self, name: str) -> asyncio.Task[Any] | None:
        """The running task called `name`, if any."""
        task = self._named.get(name)
        return task if task is not None and not task.done() else None

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if self._named.get(task.get_name()) is task:
            del self._named[task.get_name()]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s failed: %s", task.get_name(), exc, exc_info=exc)
        elif not self._closing:
            log.warning("task %s exited unexpectedly", task.get_name())

    def wind_down(self) -> None:
        """The tasks were asked to stop and will return on their own: that is no longer unexpected."""
        self._closing = True

    async def shutdown(self, *, grace: float = 5.0) -> None:
        self._closing = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            log.warning("task %s did not stop within %.0fs", task.get_name(), grace)


async def bounded(items: Iterable[T], work: Callable[[T], Awaitable[R]], *, limit: int) -> list[R]:
    """`work(item)` for every item, at most `limit` at once, the results in the order of `items`.

    The first failure cancels the work still running and is raised as itself, not wrapped in
    an ExceptionGroup: callers handle the errors they expect inside `work` and let the rest
    (an unreachable API server, a cancellation) end the whole fan-out.
    """
    slots = asyncio.Semaphore(limit)

    async def one(item: T) -> R:
        async with slots:
            return await work(item)

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in items]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in tasks]
