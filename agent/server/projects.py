"""`GET /api/v1/projects`: every project the agent knows (`[[projects]]` and AppProjects adopted from
Git), each with the apps in it.

RBAC has no `projects` resource in Argo CD's model as this agent reads it, so a project is shown
to whoever may `get` all of its apps (`applications, get, <project>/*`) or at least one of them,
and lists only the apps the caller may `get`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from agent.controller import Controller
from agent.model import DEFAULT_PROJECT, ProjectSpec
from agent.server.auth import AUTHENTICATED, declare, may, may_in_project

CONTROLLER: web.AppKey[Controller] = web.AppKey("projects_controller", Controller)


def project_view(project: ProjectSpec, *, parent: str, apps: list[str]) -> dict[str, Any]:
    return {
        "name": project.name,
        "description": project.description,
        "origin": project.origin,
        "parent": parent or None,  # the app whose render declared it; None for `[[projects]]` and `default`
        "source_repos": list(project.source_repos),
        "destinations": [{"server": d.server, "name": d.name, "namespace": d.namespace} for d in project.destinations],
        "roles": [{"name": role.name, "description": role.description} for role in project.roles],
        "sync_windows": len(project.sync_windows),
        "applications": apps,
    }


async def list_projects(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER]
    members: dict[str, list[str]] = {}
    for name, worker in sorted(controller.apps.workers.items()):
        if may(request, "get", name):
            members.setdefault(worker.spec.project, []).append(name)
    known = {project.name: project for project in controller.projects.all()}
    known.setdefault(DEFAULT_PROJECT, ProjectSpec.default())  # Argo CD's, unless someone declares it
    views = [project_view(project, parent=controller.projects.parent_of(name), apps=members.get(name, []))
             for name, project in sorted(known.items())
             if name in members or may_in_project(request, "get", name)]
    return web.json_response(views)


def add_routes(app: web.Application, controller: Controller) -> None:
    app[CONTROLLER] = controller
    app.router.add_get("/api/v1/projects", list_projects)
    declare(app, "GET", "/api/v1/projects", AUTHENTICATED)
