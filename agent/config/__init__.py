"""TOML configuration → frozen dataclasses.

Every problem is reported as `FILE: table.key: problem`, and an unknown key is an
error rather than silently ignored: a typo in `prune` must not leave pruning off.

    reader       strict table reading, durations and sizes
    agent        [agent]
    apps         [[applications]] with sync policy, directory and kustomize options
    lists        [[repositories]] and [[health_checks]]
    projects     [[projects]]: Argo CD AppProjects (repositories, destinations, kinds, roles, windows)
    auth         [auth]: API tokens and RBAC; which listen addresses may go without
    clusters     [[clusters]]: more clusters than the one the agent runs against
    notifications  [notifications]: services, templates, triggers, subscriptions (compiled)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config.agent import AgentSettings, LeaderElectionSettings, ShardingSettings, parse_agent
from agent.config.apps import AppSpec, parse_app
from agent.config.auth import AuthSettings, check_listen, parse_auth
from agent.config.clusters import parse_clusters
from agent.config.lists import HealthCheckSpec, parse_health_checks, parse_repositories
from agent.config.notifications import parse_notifications
from agent.config.projects import parse_projects
from agent.config.reader import Table, parse_duration, parse_size
from agent.errors import ConfigError
from agent.model import (
    IN_CLUSTER,
    ClusterSpec,
    DirectorySpec,
    IgnoreDifference,
    KustomizeSpec,
    ProjectSpec,
    RenderSettings,
    RepoSpec,
    RetryPolicy,
    SyncPolicy,
)
from agent.notifications.settings import NotificationSettings

__all__ = [
    "AgentSettings",
    "AppSpec",
    "AuthSettings",
    "ClusterSpec",
    "DirectorySpec",
    "HealthCheckSpec",
    "IgnoreDifference",
    "KustomizeSpec",
    "LeaderElectionSettings",
    "NotificationSettings",
    "RenderSettings",
    "RepoSpec",
    "RetryPolicy",
    "Settings",
    "ShardingSettings",
    "SyncPolicy",
    "load_settings",
    "parse_duration",
    "parse_settings",
    "parse_size",
]


@dataclass(frozen=True)
class Settings:
    agent: AgentSettings
    applications: tuple[AppSpec, ...]
    source: Path | None = None
    repositories: tuple[RepoSpec, ...] = ()
    health_checks: tuple[HealthCheckSpec, ...] = ()
    projects: tuple[ProjectSpec, ...] = ()  # declared in TOML; `default` is built in unless declared
    auth: AuthSettings | None = None  # None: the API is open (loopback only, or insecure_no_auth)
    clusters: tuple[ClusterSpec, ...] = ()
    notifications: NotificationSettings = field(default_factory=NotificationSettings)

    def app(self, name: str) -> AppSpec | None:
        return next((a for a in self.applications if a.name == name), None)


def parse_settings(data: Mapping[str, Any], *, file: str = "<config>") -> Settings:
    top = Table(file, "", data)
    agent_data = top.get("agent", dict, {})
    agent = parse_agent(Table(file, "agent", agent_data))
    repositories = parse_repositories(top.sub_array("repositories"))
    health_checks = parse_health_checks(top.sub_array("health_checks"))
    projects = parse_projects(top.sub_array("projects"))
    auth = parse_auth(Table(file, "auth", top.get("auth", dict)) if "auth" in data else None)
    clusters = parse_clusters(top.sub_array("clusters"), kube_qps=agent.kube_qps, kube_burst=agent.kube_burst)
    known_clusters = {IN_CLUSTER, *(cluster.name for cluster in clusters)}
    # Always parsed: the catalog's triggers keep their marks even before anyone subscribes.
    notifications = parse_notifications(Table(file, "notifications", top.get("notifications", dict, {})))
    apps: list[AppSpec] = []
    for table in top.sub_array("applications"):
        app = parse_app(table)
        if any(existing.name == app.name for existing in apps):
            raise table.error("name", f"{app.name!r} is used by another application")
        # A server URL may be a kubeconfig's, known once it is read; a name without Secrets to
        # declare more clusters must be one of the file's (a typo would leave the app Unknown).
        if "://" not in app.cluster and app.cluster not in known_clusters and not agent.credentials_namespace:
            raise table.error("cluster", f"{app.cluster!r} names no [[clusters]] entry (known: "
                                         f"{', '.join(sorted(known_clusters))}; or set [agent] credentials_namespace "
                                         "to read Argo CD cluster Secrets)")
        apps.append(app)
    unknown = sorted(set(data) - top.used)
    if unknown:
        raise ConfigError(f"{file}: {unknown[0]}: unknown table or key")
    check_listen(agent, auth, file=file)
    return Settings(agent=agent, applications=tuple(apps), source=Path(file) if file != "<config>" else None,
                    repositories=repositories, health_checks=health_checks, projects=projects, auth=auth,
                    clusters=clusters, notifications=notifications)


def load_settings(path: Path) -> Settings:
    """Read and validate a configuration file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_settings(data, file=str(path))
