"""What one render of a parent app (an Argo CD "app of apps") means for its children. Pure.

    decide(parent, rendered, previous=, running=, taken=, projects=, prune=)   a ParentDecision:
        the children to run (with their specs) or show `Unknown`, those to stop (and whether
        their objects go too), the AppProjects to adopt, and the parent's new `Adopted` record

Composed of agent.argocd.lifecycle's decisions: a parent's Application files through
`next_adopted`, each ApplicationSet through `next_generated` (or `next_removed_set` when the set
left the render), every new name claimed against the names declared elsewhere (the first
declaration keeps it). Never delete on doubt: only `Removal`s delete, and lifecycle makes them
only after a successful render without the app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from agent.argocd.application import object_name
from agent.argocd.applicationset import (
    ApplicationSetSpec,
    Generated,
    GenerationFailed,
    SetPolicy,
    parse_application_set,
)
from agent.argocd.definitions import Definitions, is_definition
from agent.argocd.fields import InvalidDefinition, Refused
from agent.argocd.lifecycle import Change, Removal, next_adopted, next_generated, next_removed_set
from agent.argocd.view import definition_state, placeholder
from agent.config.apps import AppSpec
from agent.model import (
    Adopted,
    AdoptedChild,
    Condition,
    ConditionType,
    Manifest,
    ProjectSpec,
    ResourceState,
)
from agent.policy import InvalidWindow, PolicyError, check_window, project_role_lines


@dataclass(frozen=True)
class Rendered:
    """A successful render of the parent: its definitions, parsed, and each set's generation."""

    manifests: tuple[Manifest, ...]  # the definitions as rendered (kept in the record, for a restart)
    definitions: Definitions
    generated: Mapping[str, Generated | GenerationFailed] = field(default_factory=dict)  # by set name


@dataclass(frozen=True)
class ParentDecision:
    adopted: Adopted  # the parent's new record: children, definition states, conditions
    specs: Mapping[str, AppSpec]  # every child's spec (a placeholder for one refused that never ran)
    removals: tuple[Removal, ...] = ()  # children to stop; their objects go when `delete_resources`
    projects: tuple[ProjectSpec, ...] = ()  # the AppProjects this parent declares and keeps


def decide(parent: str, rendered: Rendered, *, previous: Adopted | None, running: Mapping[str, AppSpec],
           taken: Mapping[str, str], projects: Mapping[str, str], prune: bool) -> ParentDecision:
    """`running`: the spec each of the parent's children runs with now. `taken`: every app name declared
    elsewhere (TOML apps, other parents' children) → where. `projects`: every project declared elsewhere
    → where. `prune`: whether this reconcile of the parent prunes (an app gone from Git is removed)."""
    work = _Work(parent, rendered, previous or Adopted(), running, taken, prune)
    kept_projects = work.app_projects(projects)
    work.applications()
    for app_set in rendered.definitions.sets:
        work.application_set(app_set)
    work.removed_sets()
    return work.result(kept_projects)


class _Work:
    def __init__(self, parent: str, rendered: Rendered, previous: Adopted, running: Mapping[str, AppSpec],
                 taken: Mapping[str, str], prune: bool) -> None:
        self.parent, self.rendered, self.previous, self.running = parent, rendered, previous, running
        self.taken, self.prune = dict(taken), prune
        self.children: dict[str, AdoptedChild] = {}
        self.specs: dict[str, AppSpec] = {}
        self.removals: list[Removal] = []
        self.conditions: list[Condition] = list(rendered.definitions.conditions)
        self.states: list[ResourceState] = []
        self.claimed: dict[str, str] = {}  # names claimed in this render, and where
        for child in previous.children:  # names this parent's other sources hold: the first keeps them
            self.claimed.setdefault(child.name, child.origin)

    # ------------------------------------------------------------------ AppProjects

    def app_projects(self, elsewhere: Mapping[str, str]) -> tuple[ProjectSpec, ...]:
        kept = []
        refused = {refusal.name: refusal for refusal in self.rendered.definitions.refused
                   if refusal.kind == "AppProject"}
        for project in self.rendered.definitions.projects:
            problem = project_problem(project)
            if project.name in elsewhere:
                problem = (f"AppProject {project.name} is declared twice: in {elsewhere[project.name]} and in "
                           f"{project.origin}; the one in {elsewhere[project.name]} is used")
            if problem:
                self.conditions.append(Condition(ConditionType.INVALID_SPEC_ERROR, problem))
            else:
                kept.append(project)
            self.states.append(definition_state("AppProject", project.name, problem))
        for name, refusal in refused.items():
            self.states.append(definition_state("AppProject", name, refusal.message))
            if refusal.unsupported:  # an invalid one is among the definitions' errors already
                self.conditions.append(Condition(ConditionType.INVALID_SPEC_ERROR, refusal.message))
        return tuple(kept)

    # ------------------------------------------------------------------ Application files

    def applications(self) -> None:
        definitions = self.rendered.definitions
        objects = {object_name(m.obj): m for m in self.rendered.manifests if m.obj.get("kind") == "Application"}
        apps = tuple(app for app in definitions.apps if self._claim(app.name, app.origin, ""))
        refused = tuple(r for r in definitions.refused
                        if r.kind != "Application" or self._claim(r.name, r.origin, ""))
        previous = self._previous("")
        change = next_adopted(previous, replace(definitions, apps=apps, refused=refused, errors=()), prune=self.prune)
        raw = {name: manifest.obj for name, manifest in objects.items()}
        files = {name: manifest.source for name, manifest in objects.items()}
        self._apply(change, source="", previous=previous, raw=raw, files=files,
                    valid={app.name for app in apps})
        for app in apps:
            self.states.append(definition_state("Application", app.name, ""))
        for refusal in refused:
            if refusal.kind == "Application":
                self.states.append(definition_state("Application", refusal.name,
                                                    "" if refusal.unsupported else refusal.message))

    # ------------------------------------------------------------------ ApplicationSets

    def application_set(self, app_set: ApplicationSetSpec) -> None:
        outcome = self.rendered.generated.get(app_set.name) or GenerationFailed(
            f"{app_set.origin}: not generated")
        previous = self._previous(app_set.name)
        change = next_generated(previous, outcome, app_set.policy, origin=app_set.origin)
        creates = tuple(app for app in change.create if self._claim(app.name, app.origin, app_set.name))
        refused = tuple(r for r in change.refused if r.name in previous
                        or self._claim(r.name, r.origin, app_set.name))
        change = replace(change, create=creates, refused=refused)
        generated = outcome if isinstance(outcome, Generated) else Generated()
        self._apply(change, source=app_set.name, previous=previous, raw=generated.objects,
                    files=dict.fromkeys(generated.names, app_set.file), valid={app.name for app in generated.apps})
        failed = outcome.message if isinstance(outcome, GenerationFailed) else ""
        kept = next((c.message for c in change.conditions if c.type is ConditionType.COMPARISON_ERROR), "")
        self.states.append(definition_state("ApplicationSet", app_set.name, failed or kept,
                                            healthy=f"{len(generated.names)} applications"))

    def removed_sets(self) -> None:
        """Sets this parent had children from that its render no longer holds as a readable set."""
        definitions = self.rendered.definitions
        present = {app_set.name for app_set in definitions.sets}
        refused = {r.name: r for r in definitions.refused if r.kind == "ApplicationSet"}
        policies = _set_policies(self.previous.definitions)
        for name, refusal in refused.items():
            self.states.append(definition_state("ApplicationSet", name, refusal.message))
            if refusal.unsupported:  # an invalid one is among the definitions' errors already
                self.conditions.append(Condition(ConditionType.INVALID_SPEC_ERROR, refusal.message))
        for source in sorted({child.source for child in self.previous.children} - {""} - present):
            previous = self._previous(source)
            if source in refused or not definitions.complete:
                change = Change(keep=tuple(sorted(previous)))  # the file is there, unreadable: keep its apps
            elif source not in policies:  # what the set allowed is not known: never delete on doubt
                change = next_removed_set(previous, SetPolicy(), origin=f"ApplicationSet {source}", prune=False)
            else:
                change = next_removed_set(previous, policies[source], origin=f"ApplicationSet {source}",
                                          prune=self.prune)
            self._apply(change, source=source, previous=previous, raw={}, files={}, valid=set())

    # ------------------------------------------------------------------ shared

    def _previous(self, source: str) -> dict[str, AppSpec]:
        """The apps this source runs now (children shown `Unknown` that never ran are not among them)."""
        return {child.name: self.running[child.name] for child in self.previous.children
                if child.source == source and child.name in self.running
                and self.running[child.name].repo}

    def _claim(self, name: str, origin: str, source: str) -> bool:
        """Whether `name` is free for `source`: declared nowhere else, and not by another source here."""
        mine = self.previous.child(name)
        if mine is not None and mine.source == source:
            return True
        where = self.taken.get(name) or self.claimed.get(name)
        if where is not None:
            self.conditions.append(Condition(
                ConditionType.INVALID_SPEC_ERROR,
                f"application {name} is declared twice: in {where} and in {origin}; the one in {where} keeps running"))
            self.states.append(definition_state("Application", name, f"declared twice: {where} keeps it"))
            return False
        self.claimed[name] = origin
        return True

    def _apply(self, change: Change, *, source: str, previous: Mapping[str, AppSpec],
               raw: Mapping[str, Mapping[str, Any]], files: Mapping[str, str], valid: set[str]) -> None:
        """Record what `change` means for the children of one source."""
        for app in (*change.create, *change.update):
            self._child(app.name, app, source=source, file=files.get(app.name, app.origin), origin=app.origin,
                        definition=raw.get(app.name, {}), refusal="")
        for name in change.keep:
            before = self.previous.child(name)
            assert before is not None
            fresh = name in valid and name in raw
            self._child(name, previous[name], source=source, file=before.file, origin=before.origin,
                        definition=raw[name] if fresh else before.definition,
                        refusal="" if name in valid else before.refusal)
        for refusal in change.refused:
            self._refused(refusal, source=source, previous=previous, raw=raw, files=files)
        self.removals.extend(change.delete)
        self.conditions.extend(change.conditions)
        if change.requires_pruning:
            names = ", ".join(change.requires_pruning)
            self.conditions.append(Condition(ConditionType.COMPARISON_ERROR,
                                             f"{len(change.requires_pruning)} applications require pruning: {names} "
                                             "(gone from Git; the parent does not prune)"))
            for name in change.requires_pruning:
                self.states.append(definition_state("Application", name, "requires pruning"))

    def _refused(self, refusal: Refused, *, source: str, previous: Mapping[str, AppSpec],
                 raw: Mapping[str, Mapping[str, Any]], files: Mapping[str, str]) -> None:
        before = self.previous.child(refusal.name)
        if refusal.name in previous and before is not None:  # it ran: it keeps its last spec, stopped
            self._child(refusal.name, previous[refusal.name], source=source, file=before.file, origin=before.origin,
                        definition=before.definition, refusal=refusal.message, project=before.project)
            return
        spec = placeholder(refusal.name, parent=self.parent, origin=refusal.origin, project=refusal.project)
        self._child(refusal.name, spec, source=source, file=files.get(refusal.name, refusal.origin),
                    origin=refusal.origin, definition=raw.get(refusal.name, {}), refusal=refusal.message,
                    project=spec.project)

    def _child(self, name: str, spec: AppSpec, *, source: str, file: str, origin: str,
               definition: Mapping[str, Any], refusal: str, project: str = "") -> None:
        self.specs[name] = spec
        self.children[name] = AdoptedChild(name=name, source=source, file=file, origin=origin,
                                           definition=definition, refusal=refusal, project=project or spec.project)

    def result(self, projects: tuple[ProjectSpec, ...]) -> ParentDecision:
        states = {(state.ref.kind, state.ref.name): state for state in self.states}  # the last word per definition
        adopted = Adopted(definitions=self.rendered.manifests,
                          children=tuple(self.children[name] for name in sorted(self.children)),
                          resources=tuple(states[key] for key in sorted(states)),
                          conditions=tuple(dict.fromkeys(self.conditions)),
                          in_sync=not self.conditions)
        return ParentDecision(adopted=adopted, specs=self.specs, removals=tuple(self.removals), projects=projects)


def project_problem(project: ProjectSpec) -> str:
    """Why an adopted AppProject cannot be used as written (checked as `[[projects]]` is), else ""."""
    try:
        project_role_lines(project)
        for window in project.sync_windows:
            check_window(window)
    except (PolicyError, InvalidWindow) as exc:
        return f"{project.origin}: AppProject {project.name}: {exc}"
    return ""


def _set_policies(manifests: Sequence[Manifest]) -> dict[str, SetPolicy]:
    """The policy of each set a previous render declared (what its removal may do to its apps)."""
    policies: dict[str, SetPolicy] = {}
    for manifest in manifests:
        if manifest.obj.get("kind") != "ApplicationSet" or not is_definition(manifest.obj):
            continue
        try:
            app_set = parse_application_set(manifest.obj, file=manifest.source)
        except InvalidDefinition:
            continue
        policies[app_set.name] = app_set.policy
    return policies

