"""For which app the current task works: the write gate of a sharded agent asks it of every write.

The controller sets it around each reconcile and teardown; tasks a reconcile starts (a fan-out
of applies) inherit it, background tasks (agent.tasks) start without it, and a write made
outside any app's work is refused while sharding is on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

_ACTING_FOR: ContextVar[str | None] = ContextVar("gitops_agent_acting_for", default=None)


@contextlib.contextmanager
def acting_for(app: str) -> Iterator[None]:
    token = _ACTING_FOR.set(app)
    try:
        yield
    finally:
        _ACTING_FOR.reset(token)


def acting_app() -> str | None:
    return _ACTING_FOR.get()
