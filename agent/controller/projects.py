"""Every project the agent knows: `[[projects]]` from the configuration, and AppProjects adopted
from a parent app's render (an Argo CD "app of apps").

A name declared in the configuration wins over one adopted from Git; between parents, the one
that adopted the name first keeps it (the parent decides conflicts and reports them; this table
only records the outcome). `default` is Argo CD's permissive project unless someone declares it.
Listeners hear the names whose rules changed, so that API access and the apps of those projects
follow at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from agent.config import AppSpec
from agent.model import ProjectSpec
from agent.policy import find_project, repo_permitted

ProjectsChanged = Callable[[set[str]], None]


class ProjectTable:
    def __init__(self, configured: Iterable[ProjectSpec] = ()) -> None:
        self._configured = {project.name: project for project in configured}
        self._adopted: dict[str, dict[str, ProjectSpec]] = {}  # parent app → its projects by name
        self._listeners: list[ProjectsChanged] = []

    def on_change(self, listener: ProjectsChanged) -> None:
        self._listeners.append(listener)

    def configure(self, configured: Iterable[ProjectSpec]) -> set[str]:
        """The configuration's projects (a reload); returns the names whose rules changed."""
        return self._replace(lambda: setattr(self, "_configured", {p.name: p for p in configured}))

    def adopt(self, parent: str, projects: Iterable[ProjectSpec]) -> set[str]:
        """The projects `parent` declares now (replacing what it declared before; none: forget them)."""
        declared = {project.name: project for project in projects}

        def update() -> None:
            if declared:
                self._adopted[parent] = declared
            else:
                self._adopted.pop(parent, None)

        return self._replace(update)

    def get(self, name: str) -> ProjectSpec | None:
        """The project called `name`, or None when nobody declares it (`default` always exists)."""
        return find_project(name, self._merged())

    def permits_repo(self, app: AppSpec) -> bool:
        """Whether the app's project lets its repository be asked at all: one outside `source_repos` is
        never contacted, not even to check a revision a person names."""
        project = self.get(app.project)
        return project is not None and repo_permitted(project, app.repo)

    def all(self) -> tuple[ProjectSpec, ...]:
        """Every declared project, by name (the built-in `default` only when nobody declares one)."""
        merged = self._merged()
        return tuple(merged[name] for name in sorted(merged))

    def parent_of(self, name: str) -> str:
        """The app whose render declares the project; "" when the configuration does (or nobody)."""
        if name in self._configured:
            return ""
        return next((parent for parent, projects in self._adopted.items() if name in projects), "")

    def origins(self, *, besides: str) -> dict[str, str]:
        """Every project declared by the configuration or by another parent than `besides`, and where:
        a parent declaring one of these names again is told so (the first declaration keeps it)."""
        found: dict[str, str] = {}
        for parent, projects in self._adopted.items():
            if parent != besides:
                for name, project in projects.items():
                    found.setdefault(name, f"{project.origin} (app {parent})")
        found.update({name: project.origin or "[[projects]]" for name, project in self._configured.items()})
        return found

    def _merged(self) -> dict[str, ProjectSpec]:
        merged: dict[str, ProjectSpec] = {}
        for projects in self._adopted.values():  # in adoption order: the first parent keeps a name
            for name, project in projects.items():
                merged.setdefault(name, project)
        merged.update(self._configured)
        return merged

    def _replace(self, update: Callable[[], None]) -> set[str]:
        before = self._merged()
        update()
        after = self._merged()
        changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
        if changed:
            for listener in self._listeners:
                listener(changed)
        return changed
