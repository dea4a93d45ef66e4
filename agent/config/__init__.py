"""TOML configuration → frozen dataclasses.

Every problem is reported as `FILE: table.key: problem`, and an unknown key is an
error rather than silently ignored: a typo in `prune` must not leave pruning off.

    reader       strict table reading, durations and sizes
    agent        [agent]
    apps         [[applications]] with sync policy, directory and kustomize options
    lists        [[repositories]] and [[health_checks]]
    notifications  [notifications]: services, templates, triggers, subscriptions (compiled)
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config.agent import AgentSettings, LeaderElectionSettings, parse_agent
from agent.config.apps import AppSpec, parse_app
from agent.config.lists import HealthCheckSpec, parse_health_checks, parse_repositories
from agent.config.notifications import parse_notifications
from agent.config.reader import Table, parse_duration, parse_size
from agent.errors import ConfigError
from agent.model import (
    DirectorySpec,
    IgnoreDifference,
    KustomizeSpec,
    RenderSettings,
    RepoSpec,
    RetryPolicy,
    SyncPolicy,
)
from agent.notifications.settings import NotificationSettings

__all__ = [
    "AgentSettings",
    "AppSpec",
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
    notifications: NotificationSettings = field(default_factory=NotificationSettings)

    def app(self, name: str) -> AppSpec | None:
        return next((a for a in self.applications if a.name == name), None)


def parse_settings(data: Mapping[str, Any], *, file: str = "<config>") -> Settings:
    top = Table(file, "", data)
    agent_data = top.get("agent", dict, {})
    agent = parse_agent(Table(file, "agent", agent_data))
    repositories = parse_repositories(top.sub_array("repositories"))
    health_checks = parse_health_checks(top.sub_array("health_checks"))
    # Always parsed: the catalog's triggers keep their marks even before anyone subscribes.
    notifications = parse_notifications(Table(file, "notifications", top.get("notifications", dict, {})))
    apps: list[AppSpec] = []
    for table in top.sub_array("applications"):
        app = parse_app(table)
        if any(existing.name == app.name for existing in apps):
            raise table.error("name", f"{app.name!r} is used by another application")
        apps.append(app)
    unknown = sorted(set(data) - top.used)
    if unknown:
        raise ConfigError(f"{file}: {unknown[0]}: unknown table or key")
    return Settings(agent=agent, applications=tuple(apps), source=Path(file) if file != "<config>" else None,
                    repositories=repositories, health_checks=health_checks, notifications=notifications)


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
