"""A project (Argo CD's AppProject): where an app's sources may come from, where and what it may deploy,
who may act on its apps, and when it may sync. Plain data; the decisions are agent.policy's.

Field names are Argo CD's, in snake_case; globs and `!` negations keep Argo CD's meaning.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PROJECT = "default"


@dataclass(frozen=True)
class Destination:
    """Where apps may deploy: a cluster (by `server` URL or `name`) and a namespace; globs, `!` negates."""

    server: str = ""
    name: str = ""
    namespace: str = ""


@dataclass(frozen=True)
class ResourceKind:
    """A resource type in a white- or blacklist: group and kind (globs); cluster entries may name objects."""

    group: str
    kind: str
    name: str = ""


@dataclass(frozen=True)
class ProjectRole:
    """A role of the project: its RBAC policies (Argo CD CSV lines) and the groups that hold it."""

    name: str
    description: str = ""
    policies: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class SyncWindow:
    """When apps of the project may (allow) or may not (deny) sync: a cron schedule and a duration."""

    kind: str  # allow | deny
    schedule: str  # cron, five fields
    duration: str  # e.g. "1h", "30m"
    applications: tuple[str, ...] = ()  # globs on app names; a window needs one of these three lists
    namespaces: tuple[str, ...] = ()
    clusters: tuple[str, ...] = ()
    manual_sync: bool = False  # manual syncs go through even while the window blocks
    time_zone: str = "UTC"


@dataclass(frozen=True)
class ProjectSpec:
    name: str
    description: str = ""
    source_repos: tuple[str, ...] = ()  # globs; `*` allows every repository
    destinations: tuple[Destination, ...] = ()
    cluster_resource_whitelist: tuple[ResourceKind, ...] = ()
    cluster_resource_blacklist: tuple[ResourceKind, ...] = ()
    namespace_resource_whitelist: tuple[ResourceKind, ...] | None = None  # None: every namespaced kind
    namespace_resource_blacklist: tuple[ResourceKind, ...] = ()
    roles: tuple[ProjectRole, ...] = ()
    sync_windows: tuple[SyncWindow, ...] = ()
    adopt_existing: bool = True  # may an app take over an existing object that carries no app's tracking id
    origin: str = ""  # where it was declared, for messages: a TOML file and table, or a file in Git

    @classmethod
    def default(cls) -> ProjectSpec:
        """Argo CD's `default` project: every repository, every destination, every kind."""
        return cls(name=DEFAULT_PROJECT, source_repos=("*",), destinations=(Destination(server="*", namespace="*"),),
                   cluster_resource_whitelist=(ResourceKind("*", "*"),))
