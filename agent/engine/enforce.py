"""What a project's verdict (agent.policy.check_sync) does to a plan. Pure: no I/O.

    refusal    an object, repository or destination the project does not permit: the plan is
               refused as a whole (agent.engine.sync applies nothing and prunes nothing, and the
               sync fails with the refusal as its message), as Argo CD fails a sync whose tasks
               are "not valid"
    protected  a prune candidate outside the project: never deleted, and (as Argo CD leaves such
               live objects out of the comparison) no reason to call the app OutOfSync

Applying a verdict twice gives the same plan, so a sync in progress is judged again at every
step against the project as it is then.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from agent.model import ObjectRef, Plan, PruneCandidate


def enforce(plan: Plan, *, refusal: str, protected: Collection[ObjectRef], project: str) -> Plan:
    """The plan as the project permits it. `refusal` wins over a refusal the plan already has
    (an empty render, a shared object): the project's is the reason to fix first."""
    prune = tuple(_protect(candidate, project) if candidate.ref in protected else candidate
                  for candidate in plan.prune)
    if not refusal and prune == plan.prune:
        return plan
    return replace(plan, prune=prune, refusal=refusal or plan.refusal)


def _protect(candidate: PruneCandidate, project: str) -> PruneCandidate:
    if candidate.extraneous_ignored:  # not ours to prune anyway (another app's, or handed over): its reason stays
        return candidate
    return replace(candidate, blocked=f"not permitted in project {project}: never pruned", extraneous_ignored=True)
