"""Everything a project says about one sync, in one answer: the reconcile's single call before it applies.

    verdict = check_sync(project, app=..., target=..., objects=desired, prune=candidates,
                         is_namespaced=..., now=..., manual=...)
    verdict.allowed       False: apply nothing, prune nothing, show verdict.message as the condition
    verdict.violations    every rule broken (repository, destination, kinds), or the missing project
    verdict.window        the sync windows' decision (reason, opens_at)
    verdict.protected     prune candidates outside the project: never pruned, even when allowed

Pure, like the rest of agent.policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from agent.model import KubeObject, ObjectRef, ProjectSpec
from agent.policy.projects import NamespacedLookup, Target, Violation, object_violation, unknown_project, violations
from agent.policy.windows import WindowDecision, decide


@dataclass(frozen=True)
class SyncVerdict:
    violations: tuple[Violation, ...]
    window: WindowDecision
    protected: frozenset[ObjectRef]

    @property
    def allowed(self) -> bool:
        return not self.violations and self.window.allowed

    @property
    def message(self) -> str:
        """The app's condition text: the violations, or why the windows block ("" when allowed)."""
        if self.violations:
            return "; ".join(violation.message for violation in self.violations)
        return "" if self.window.allowed else self.window.reason


def check_sync(project: ProjectSpec | None, *, app: str, project_name: str, target: Target,
               objects: Iterable[KubeObject], prune: Iterable[ObjectRef] = (),
               is_namespaced: NamespacedLookup | None = None, now: float, manual: bool) -> SyncVerdict:
    """May this sync run? `project` None: the app names a project that does not exist (`project_name`)."""
    candidates = tuple(prune)
    if project is None:
        return SyncVerdict((unknown_project(app, project_name),), WindowDecision(True), frozenset(candidates))
    found = violations(project, target, objects, is_namespaced)
    window = decide(project.sync_windows, app=app, namespace=target.namespace, server=target.server,
                    cluster_name=target.cluster_name, now=now, manual=manual, project=project.name)
    protected = frozenset(ref for ref in candidates
                          if object_violation(project, ref, server=target.server,
                                              cluster_name=target.cluster_name) is not None)
    return SyncVerdict(tuple(found), window, protected)
