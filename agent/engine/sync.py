"""Run the desired objects through the Kubernetes API: apply in order, record what changed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from agent.engine.desired import apply_order
from agent.errors import KubeError, KubeUnreachable
from agent.kube import KubeClient
from agent.model import Change, ChangeAction, ChangeSet, KubeObject, ObjectRef

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyncOutcome:
    changes: ChangeSet
    live: dict[ObjectRef, KubeObject]


async def apply_objects(kube: KubeClient, desired: Sequence[KubeObject], *, app: str, revision: str) -> SyncOutcome:
    """Apply every object in kind order; one object's failure does not stop the others.

    An unreachable API server aborts the run: the remaining objects would fail the same way.
    """
    changes: list[Change] = []
    live: dict[ObjectRef, KubeObject] = {}
    for obj in sorted(desired, key=apply_order):
        ref = ObjectRef.of(obj)
        try:
            before = await kube.get(obj)
            after = await kube.apply(obj)
        except KubeUnreachable:
            raise
        except KubeError as exc:
            changes.append(Change(ref, ChangeAction.FAILED, str(exc)))
            log.warning("apply failed", extra={"app": app, "revision": revision, "object": str(ref),
                                                "action": "failed", "error": exc.message})
            continue
        live[ref] = after
        action = _action(before, after)
        changes.append(Change(ref, action))
        if action is not ChangeAction.UNCHANGED:
            log.info("applied", extra={"app": app, "revision": revision, "object": str(ref),
                                       "action": action.value})
    return SyncOutcome(ChangeSet(tuple(changes)), live)


def _action(before: KubeObject | None, after: KubeObject) -> ChangeAction:
    if before is None:
        return ChangeAction.CREATED
    if before["metadata"].get("resourceVersion") == after["metadata"].get("resourceVersion"):
        return ChangeAction.UNCHANGED
    return ChangeAction.CONFIGURED
