"""What to delete when an app with `prune_on_delete = true` leaves the configuration. Pure: no I/O.

Argo CD's cascading deletion of an Application, with prune's rules (agent.engine.plan):
an object is deleted only when its label and tracking id both name the app; one annotated
`Delete=false` (Argo CD's option for exactly this) or `Prune=false`, in our spelling or Argo
CD's, is kept. A Namespace that holds a kept object is kept too: deleting it would delete
what the annotation protects. An object another app declares passes to it instead of being
deleted (agent.engine.ownership). Deletions run in prune order (reverse waves, PruneLast last).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

from agent.engine.options import sync_options
from agent.engine.plan import Plan, PruneCandidate, make_plan
from agent.model import Claims, KubeObject, ObjectRef, SyncPolicy

DELETE_FALSE = "Delete=false"


@dataclass(frozen=True)
class DeletionPlan:
    delete: tuple[PruneCandidate, ...]  # in the order to delete them
    kept: tuple[PruneCandidate, ...]  # each with the reason in `blocked`


def deletion_plan(app: str, live: Mapping[ObjectRef, KubeObject], claims: Claims | None = None, *,
                  keep: Callable[[ObjectRef], str] | None = None) -> DeletionPlan:
    """Split the app's labelled live objects into those to delete and those to keep. `keep` says why
    an object must stay whatever else holds (outside the app's project), "" when it need not."""
    # An empty render with pruning on: every labelled object is a prune candidate, with prune's verdict.
    plan = make_plan(app, (), live, {}, policy=SyncPolicy(prune=True, allow_empty=True), claims=claims)
    candidates = [_delete_false(candidate) for candidate in plan.prune]
    if keep is not None:
        candidates = [c if c.blocked or not keep(c.ref) else replace(c, blocked=keep(c.ref)) for c in candidates]
    holding = {c.ref.namespace for c in candidates if c.blocked and c.ref.namespace}
    candidates = [replace(c, blocked="holds objects that are kept")
                  if not c.blocked and c.ref.group == "" and c.ref.kind == "Namespace" and c.ref.name in holding
                  else c for c in candidates]
    return DeletionPlan(delete=tuple(Plan((), tuple(candidates)).prune_order()),
                        kept=tuple(c for c in candidates if c.blocked))


def _delete_false(candidate: PruneCandidate) -> PruneCandidate:
    if not candidate.blocked and DELETE_FALSE in sync_options(candidate.live):
        return replace(candidate, blocked=f"annotated {DELETE_FALSE}")
    return candidate
