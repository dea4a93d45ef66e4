"""A parent's render → the Argo CD definitions it holds, adopted as configuration. Pure.

`argoproj.io/v1alpha1` Application, AppProject and ApplicationSet objects are taken out of the
render (they are configuration for this agent, not objects to apply); every other object,
Argo Rollouts' `argoproj.io` kinds included, stays for the parent to apply.

    split_definitions(manifests)            (definitions, everything else)
    parse_definitions(manifests, parent=)   Definitions: apps, projects, sets, refusals, errors
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from agent.argocd.application import API_VERSION, parse_application
from agent.argocd.applicationset import ApplicationSetSpec, parse_application_set
from agent.argocd.fields import InvalidDefinition, Refused, Unsupported, declared_project
from agent.argocd.project import parse_app_project
from agent.config.apps import AppSpec
from agent.model import Condition, ConditionType, Manifest, ProjectSpec

ADOPTED_KINDS = ("Application", "AppProject", "ApplicationSet")

T = TypeVar("T", AppSpec, ProjectSpec, ApplicationSetSpec)


@dataclass(frozen=True)
class Definitions:
    """What one render of a parent declares.

    `refused` are named definitions that cannot be adopted (their app or project is shown
    `Unknown`; a refused set keeps every app it generated). `errors` are the messages that keep
    the parent from `Synced`: invalid definitions and names declared twice. `complete` is False
    when some definition could not even be named: then nothing declared here may be removed.
    """

    apps: tuple[AppSpec, ...] = ()
    projects: tuple[ProjectSpec, ...] = ()
    sets: tuple[ApplicationSetSpec, ...] = ()
    refused: tuple[Refused, ...] = ()
    errors: tuple[str, ...] = ()
    complete: bool = True

    @property
    def conditions(self) -> tuple[Condition, ...]:
        return tuple(Condition(ConditionType.INVALID_SPEC_ERROR, message) for message in self.errors)

    def refused_names(self, kind: str) -> frozenset[str]:
        return frozenset(refusal.name for refusal in self.refused if refusal.kind == kind)


def is_definition(obj: dict[str, Any]) -> bool:
    return obj.get("apiVersion") == API_VERSION and obj.get("kind") in ADOPTED_KINDS


def split_definitions(manifests: Sequence[Manifest]) -> tuple[list[Manifest], list[Manifest]]:
    """(the Argo CD definitions, everything else), each in render order."""
    definitions = [manifest for manifest in manifests if is_definition(manifest.obj)]
    return definitions, [manifest for manifest in manifests if not is_definition(manifest.obj)]


def parse_definitions(manifests: Sequence[Manifest], *, parent: str) -> Definitions:
    """Parse every definition among `manifests` (others are skipped); `parent` is the app rendering them."""
    collected = _Collected()
    for manifest in manifests:
        if not is_definition(manifest.obj):
            continue
        kind = manifest.obj["kind"]
        try:
            if kind == "Application":
                collected.add(collected.apps, parse_application(manifest.obj, file=manifest.source, parent=parent),
                              manifest)
            elif kind == "AppProject":
                collected.add(collected.projects, parse_app_project(manifest.obj, file=manifest.source), manifest)
            else:
                collected.add(collected.sets, parse_application_set(manifest.obj, file=manifest.source, parent=parent),
                              manifest)
        except InvalidDefinition as exc:
            collected.refuse(exc, manifest)
    return collected.result()


class _Collected:
    """Definitions gathered in render order; a second declaration of a name loses to the first."""

    def __init__(self) -> None:
        self.apps: dict[str, tuple[AppSpec, str]] = {}
        self.projects: dict[str, tuple[ProjectSpec, str]] = {}
        self.sets: dict[str, tuple[ApplicationSetSpec, str]] = {}
        self.refused: dict[tuple[str, str], Refused] = {}
        self.errors: list[str] = []
        self.complete = True

    def add(self, found: dict[str, tuple[T, str]], item: T, manifest: Manifest) -> None:
        kind = manifest.obj["kind"]
        if not self._claim(kind, item.name, manifest):
            return
        found[item.name] = (item, manifest.origin)

    def refuse(self, error: InvalidDefinition, manifest: Manifest) -> None:
        if not error.name:
            self.complete = False
            self.errors.append(str(error))
            return
        if not self._claim(error.kind, error.name, manifest):
            return
        self.refused[(error.kind, error.name)] = Refused.of(error, origin=manifest.origin,
                                                            project=declared_project(manifest.obj))
        if not isinstance(error, Unsupported):
            self.errors.append(str(error))

    def _claim(self, kind: str, name: str, manifest: Manifest) -> bool:
        first = self._origin(kind, name)
        if first is None:
            return True
        self.errors.append(f"{kind} {name} is declared twice: in {first} and in {manifest.origin}; "
                           "the first is used")
        return False

    def _origin(self, kind: str, name: str) -> str | None:
        tables: dict[str, dict[str, Any]] = {"Application": self.apps, "AppProject": self.projects,
                                             "ApplicationSet": self.sets}
        found = tables[kind]
        if name in found:
            return str(found[name][1])
        refusal = self.refused.get((kind, name))
        return refusal.origin if refusal else None

    def result(self) -> Definitions:
        return Definitions(
            apps=tuple(app for app, _ in self.apps.values()),
            projects=tuple(project for project, _ in self.projects.values()),
            sets=tuple(found for found, _ in self.sets.values()),
            refused=tuple(self.refused.values()),
            errors=tuple(self.errors),
            complete=self.complete,
        )

