"""`[[projects]]`: Argo CD AppProjects in TOML, their fields in snake_case.

Checked as Argo CD validates an AppProject (`ValidateProject`): no `!*` in repositories or
destinations, no duplicates, role names and policies that speak of the project's own role and
apps, sync windows whose kind, cron schedule, duration and time zone can be read and that
apply to something. A mistake is a configuration error naming file, table and key.
"""

from __future__ import annotations

from agent.config.reader import Table
from agent.model import Destination, ProjectRole, ProjectSpec, ResourceKind, SyncWindow
from agent.policy import InvalidWindow, PolicyError, check_window, project_role_lines
from agent.policy.rbac import parse_policy_csv


def parse_projects(tables: list[Table]) -> tuple[ProjectSpec, ...]:
    projects: list[ProjectSpec] = []
    for table in tables:
        project = _project(table)
        if any(existing.name == project.name for existing in projects):
            raise table.error("name", f"{project.name!r} is used by another project")
        projects.append(project)
    return tuple(projects)


def _project(table: Table) -> ProjectSpec:
    name = table.get("name", str, required=True)
    if not name:
        raise table.error("name", "must not be empty")
    # Absent: every namespaced kind (Argo CD's nil list); present but empty: none.
    namespace_whitelist = "namespace_resource_whitelist" in table.data
    project = ProjectSpec(
        name=name,
        description=table.get("description", str, ""),
        source_repos=_source_repos(table),
        destinations=_destinations(table),
        cluster_resource_whitelist=_kinds(table, "cluster_resource_whitelist", named=True),
        cluster_resource_blacklist=_kinds(table, "cluster_resource_blacklist", named=True),
        namespace_resource_whitelist=_kinds(table, "namespace_resource_whitelist", named=False)
        if namespace_whitelist else None,
        namespace_resource_blacklist=_kinds(table, "namespace_resource_blacklist", named=False),
        roles=_roles(table),
        sync_windows=_windows(table),
        adopt_existing=table.get("adopt_existing", bool, True),
        origin=f"{table.file}: {table.where}",
    )
    try:
        project_role_lines(project)
    except PolicyError as exc:
        raise table.error("roles", str(exc)) from exc
    table.finish()
    return project


def _source_repos(table: Table) -> tuple[str, ...]:
    repos = table.strings("source_repos")
    for repo in repos:
        if repo == "!*":
            raise table.error("source_repos", "'!*' would deny every repository; leave the list empty instead")
    if len(set(repos)) != len(repos):
        raise table.error("source_repos", "lists a repository twice")
    return tuple(repos)


def _destinations(table: Table) -> tuple[Destination, ...]:
    destinations: list[Destination] = []
    for item in table.sub_array("destinations"):
        destination = Destination(server=item.get("server", str, ""), name=item.get("name", str, ""),
                                  namespace=item.get("namespace", str, ""))
        item.finish()
        if not (destination.server or destination.name):
            raise item.error("server", "give server (a URL glob) or name (a cluster name glob)")
        for key in ("server", "name", "namespace"):
            if getattr(destination, key) == "!*":
                raise item.error(key, "'!*' matches nothing; leave the destination out instead")
        if destination in destinations:
            raise item.error("namespace", "this destination is listed twice")
        destinations.append(destination)
    return tuple(destinations)


def _kinds(table: Table, key: str, *, named: bool) -> tuple[ResourceKind, ...]:
    kinds: list[ResourceKind] = []
    for item in table.sub_array(key):
        kind = ResourceKind(group=item.get("group", str, required=True), kind=item.get("kind", str, required=True),
                            name=item.get("name", str, "") if named else "")
        item.finish()
        if not kind.kind:
            raise item.error("kind", "must not be empty (\"*\" for every kind)")
        kinds.append(kind)
    return tuple(kinds)


def _roles(table: Table) -> tuple[ProjectRole, ...]:
    roles: list[ProjectRole] = []
    for item in table.sub_array("roles"):
        role = ProjectRole(name=item.get("name", str, required=True), description=item.get("description", str, ""),
                           policies=tuple(item.strings("policies")), groups=tuple(item.strings("groups")))
        item.finish()
        if any(existing.name == role.name for existing in roles):
            raise item.error("name", f"{role.name!r} is used by another role of this project")
        for index, policy in enumerate(role.policies):
            try:
                parse_policy_csv(policy)
            except PolicyError as exc:
                raise item.error(f"policies[{index}]", str(exc)) from exc
        for group in role.groups:
            if not group.strip() or any(char in group for char in "\"\n\r\t"):
                raise item.error("groups", f"{group!r} is not a group name")
        roles.append(role)
    return tuple(roles)


def _windows(table: Table) -> tuple[SyncWindow, ...]:
    windows: list[SyncWindow] = []
    for item in table.sub_array("sync_windows"):
        window = SyncWindow(
            kind=item.get("kind", str, required=True), schedule=item.get("schedule", str, required=True),
            duration=item.get("duration", str, required=True), applications=tuple(item.strings("applications")),
            namespaces=tuple(item.strings("namespaces")), clusters=tuple(item.strings("clusters")),
            manual_sync=item.get("manual_sync", bool, False), time_zone=item.get("time_zone", str, "UTC"),
        )
        item.finish()
        try:
            check_window(window)
        except InvalidWindow as exc:
            raise item.error(_window_key(str(exc)), str(exc)) from exc
        if window in windows:
            raise item.error("schedule", "the same window is listed twice")
        windows.append(window)
    return tuple(windows)


def _window_key(problem: str) -> str:
    """The key a window's problem is about, for the message's `table.key`."""
    for key in ("kind", "duration", "schedule"):
        if problem.startswith(key):
            return key
    return "time_zone" if problem.startswith("time zone") else "applications"
