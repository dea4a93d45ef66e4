"""An app's project, asked at every reconcile (rules may change between two): what the reconciler
may fetch, apply, prune and take over, and whether it may sync now.

    refusal(app)          before anything is fetched: the project does not exist, or refuses the
                          app's repository or destination (Argo CD's InvalidSpecError); with
                          objects, also theirs (a teardown's PostDelete hooks)
    window(app, ...)      the project's sync windows on a sync now, automated or manual
    judge(app, plan, ...) the plan as the project permits it (agent.engine.enforce): refused as a
                          whole for an object it does not permit, prune candidates outside it
                          protected; and the windows' word
    adopt_existing(app)   whether an existing object no app tracks may be taken over
    keeps(app)            for a teardown: why an object must stay ("" when it may be deleted)

The decisions are agent.policy's; projects come from the controller's ProjectTable (`lookup`),
and the cluster's server and name from the reconciler that owns this gate.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from agent.config import AppSpec
from agent.engine.enforce import enforce
from agent.errors import NotPermitted
from agent.model import KubeObject, ObjectRef, Plan, ProjectSpec
from agent.model.clusters import IN_CLUSTER, IN_CLUSTER_SERVER
from agent.policy import (
    Target,
    Violation,
    WindowDecision,
    check_sync,
    decide,
    find_project,
    object_violation,
    unknown_project,
    violations,
)

ProjectLookup = Callable[[str], ProjectSpec | None]
VIOLATIONS_SHOWN = 5  # in one refusal message; the rest are counted


def no_projects(name: str) -> ProjectSpec | None:
    """Only Argo CD's permissive `default` (a reconciler used without the controller's table)."""
    return find_project(name, {})


class ProjectGate:
    def __init__(self, lookup: ProjectLookup = no_projects, *, server: str = IN_CLUSTER_SERVER,
                 cluster_name: str = IN_CLUSTER) -> None:
        self.lookup, self.server, self.cluster_name = lookup, server, cluster_name

    def project(self, app: AppSpec) -> ProjectSpec | None:
        return self.lookup(app.project)

    def target(self, app: AppSpec) -> Target:
        return Target(repo=app.repo, namespace=app.namespace, server=self.server, cluster_name=self.cluster_name)

    def refusal(self, app: AppSpec, objects: Iterable[KubeObject] = ()) -> NotPermitted | None:
        """Why the app may not go on (with `objects`: may not write them); None when it may."""
        project = self.project(app)
        found = [unknown_project(app.name, app.project)] if project is None else \
            violations(project, self.target(app), objects)
        return NotPermitted(_message(found)) if found else None

    def window(self, app: AppSpec, *, now: float, manual: bool) -> WindowDecision:
        project = self.project(app)
        if project is None:
            return WindowDecision(True)  # refused before this is asked (`refusal`)
        return decide(project.sync_windows, app=app.name, namespace=app.namespace, server=self.server,
                      cluster_name=self.cluster_name, now=now, manual=manual, project=project.name)

    def judge(self, app: AppSpec, plan: Plan, *, now: float, manual: bool) -> tuple[Plan, WindowDecision]:
        """Every object a sync of `plan` would write (hooks, and a namespace it creates, included) and
        every prune candidate, checked against the project as it is now."""
        verdict = check_sync(self.project(app), app=app.name, project_name=app.project, target=self.target(app),
                             objects=_written(app, plan), prune=[candidate.ref for candidate in plan.prune],
                             now=now, manual=manual)
        judged = enforce(plan, refusal=_message(verdict.violations), protected=verdict.protected,
                         project=app.project)
        return judged, verdict.window

    def adopt_existing(self, app: AppSpec) -> bool:
        project = self.project(app)
        return project is None or project.adopt_existing  # no project: nothing is applied anyway

    def keeps(self, app: AppSpec) -> Callable[[ObjectRef], str]:
        """Why a teardown must keep an object: outside the project (Argo CD leaves such objects when it
        deletes an app), or every object when the project is gone (never delete on doubt)."""
        project = self.project(app)

        def reason(ref: ObjectRef) -> str:
            if project is None:
                return f"project {app.project} does not exist: nothing outside a known project is deleted"
            violation = object_violation(project, ref, server=self.server, cluster_name=self.cluster_name)
            return f"not permitted in project {project.name}: never deleted" if violation else ""

        return reason


def _written(app: AppSpec, plan: Plan) -> Iterable[KubeObject]:
    yield from (obj.desired for obj in plan.objects)
    yield from (hook.template for hook in plan.hooks)
    if app.sync_policy.has("CreateNamespace=true"):
        yield {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": app.namespace}}


def _message(found: Iterable[Violation]) -> str:
    """One line for the condition: the first few violations, and how many more."""
    messages = [violation.message for violation in found]
    shown = "; ".join(messages[:VIOLATIONS_SHOWN])
    more = len(messages) - VIOLATIONS_SHOWN
    return shown + (f" (and {more} more)" if more > 0 else "")
