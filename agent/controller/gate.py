"""An app's project, asked at every reconcile (rules may change between two): what the reconciler
may fetch, apply, prune and take over, and whether it may sync now.

    refusal(app)          before anything is fetched: the project does not exist, or refuses the
                          app's repository or destination (Argo CD's InvalidSpecError); with
                          objects, also theirs (a teardown's PostDelete hooks)
    window(app, ...)      the project's sync windows on a sync now, automated or manual
    judge(app, plan, ...) the plan as the project permits it (agent.engine.enforce): refused as a
                          whole for an object it does not permit, prune candidates outside it
                          protected; and the windows' word (left out for a sync in progress)
    adopt_existing(app)   whether an existing object no app tracks may be taken over
    keeps(app)            for a teardown: why an object must stay ("" when it may be deleted)

The decisions are agent.policy's; projects come from the controller's ProjectTable (`lookup`),
and the cluster's server and name from the reconciler that owns this gate.

A blocked window's decision is kept until the moment it opens: finding that moment walks the
cron schedule ahead (a `* * * * *` freeze takes a few hundred milliseconds), and the verdict
cannot change before it, unless the windows do (they are part of the key).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace

from agent.config import AppSpec
from agent.engine.enforce import enforce
from agent.errors import NotPermitted
from agent.model import KubeObject, ObjectRef, Plan, ProjectSpec, SyncWindow
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
from agent.policy.windows import matching

ProjectLookup = Callable[[str], ProjectSpec | None]
VIOLATIONS_SHOWN = 5  # in one refusal message; the rest are counted
HELD_KEPT = 4096  # blocked window decisions kept (per distinct set of windows, project and manual)
NO_OPENING_KEPT = 3600.0  # a block with no opening within the horizon is decided again after this
WindowKey = tuple[tuple[SyncWindow, ...], str, bool]


def no_projects(name: str) -> ProjectSpec | None:
    """Only Argo CD's permissive `default` (a reconciler used without the controller's table)."""
    return find_project(name, {})


class ProjectGate:
    def __init__(self, lookup: ProjectLookup = no_projects, *, server: str = IN_CLUSTER_SERVER,
                 cluster_name: str = IN_CLUSTER) -> None:
        self.lookup, self.server, self.cluster_name = lookup, server, cluster_name
        self._held: dict[WindowKey, tuple[WindowDecision, float]] = {}  # decision, valid until

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
        relevant = matching(project.sync_windows, app=app.name, namespace=app.namespace, server=self.server,
                            cluster_name=self.cluster_name)
        key = (relevant, project.name, manual)
        held = self._held.get(key)
        if held is not None and now < held[1]:
            return held[0]
        decision = decide(relevant, app=app.name, namespace=app.namespace, server=self.server,
                          cluster_name=self.cluster_name, now=now, manual=manual, project=project.name)
        if decision.allowed:
            self._held.pop(key, None)
        else:
            if len(self._held) >= HELD_KEPT:
                self._held.clear()
            self._held[key] = (decision, decision.opens_at or now + NO_OPENING_KEPT)
        return decision

    def judge(self, app: AppSpec, plan: Plan, *, now: float, manual: bool,
              windows: bool = True) -> tuple[Plan, WindowDecision]:
        """Every object a sync of `plan` would write (hooks, and a namespace it creates, included) and
        every prune candidate, checked against the project as it is now; and, unless `windows` is
        false (a sync in progress runs to its end), whether the windows let it start now."""
        project = self.project(app)
        rules = replace(project, sync_windows=()) if project is not None else None  # windows: `window`, kept
        verdict = check_sync(rules, app=app.name, project_name=app.project, target=self.target(app),
                             objects=_written(app, plan), prune=[candidate.ref for candidate in plan.prune],
                             now=now, manual=manual)
        judged = enforce(plan, refusal=_message(verdict.violations), protected=verdict.protected,
                         project=app.project)
        return judged, self.window(app, now=now, manual=manual) if windows else WindowDecision(True)

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
