"""What a project permits: repositories, destinations, resource kinds. Pure: plain data in, answers out.

The rules are Argo CD's (`AppProject.IsSourcePermitted`, `IsDestinationPermitted`,
`IsGroupKindNamePermitted`):

- `source_repos`: URLs are normalized (lowercase, no `.git`, scp-like SSH as `user@host/path`)
  and matched as globs in which `*` stays within one path segment. Permitted when some
  pattern matches and no `!pattern` excludes it (`!` patterns deny what they match).
- `destinations`: `{server | name, namespace}` globs; a `!` on server, name or namespace
  excludes what it matches. Permitted when some entry matches and no exclusion hits.
- kinds: `namespace_resource_whitelist` absent permits every namespaced kind, empty permits
  none; `cluster_resource_whitelist` empty permits no cluster-scoped kind. Blacklists win.
  Group and kind (and, for cluster entries, name) are `filepath.Match` patterns.

`violations` checks an app's desired objects, placed as they will be applied: a namespaced
object without a namespace counts in the app's destination namespace. The reconcile runs it
before anything is applied or pruned, and checks prune candidates with `object_violation`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from agent.model import DEFAULT_PROJECT, KubeObject, ObjectRef, ProjectSpec, ResourceKind
from agent.policy.globs import is_deny_pattern, kind_match, negatable_match

# The one cluster this agent deploys to, as Argo CD names the cluster it runs in.
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"

# Whether (apiVersion, kind) is namespaced; None when the API server does not know the kind.
NamespacedLookup = Callable[[str, str], bool | None]


@dataclass(frozen=True)
class Target:
    """Where an app takes its objects from and puts them: what a project's rules are checked against."""

    repo: str
    namespace: str  # the destination namespace (for objects that name none)
    server: str = IN_CLUSTER_SERVER
    cluster_name: str = IN_CLUSTER_NAME


@dataclass(frozen=True)
class Violation:
    """One rule of a project broken. `message` names the object (or repository, or namespace),
    the project and the rule, ready for the app's condition."""

    rule: str  # the AppProject field, in Argo CD's spelling: sourceRepos, destinations, ...
    message: str
    ref: ObjectRef | None = None


def find_project(name: str, projects: Mapping[str, ProjectSpec]) -> ProjectSpec | None:
    """The project called `name`; `default` is Argo CD's permissive one unless declared."""
    found = projects.get(name)
    if found is None and name == DEFAULT_PROJECT:
        return ProjectSpec.default()
    return found


def unknown_project(app: str, name: str) -> Violation:
    """The violation of an app naming a project nobody declared (yet: projects may come from Git)."""
    return Violation("project", f"application {app} belongs to project {name}, which does not exist")


# ----------------------------------------------------------------------- repositories


def normalize_repo(url: str) -> str:
    """Argo CD's `NormalizeGitURL`: lowercase, trimmed, without `.git`, scp-like SSH as `user@host/path`."""
    text = url.strip().lower().removeprefix("ssh://")
    head = text.split("/", 1)[0]
    # git@host:org/repo → git@host/org/repo; a port (git@host:22/org) stays
    if "://" not in text and "@" in head and ":" in text and not re.fullmatch(r"[^:]*:\d*", head):
        text = text.replace(":", "/", 1)
    return text.removesuffix(".git")


def repo_permitted(project: ProjectSpec, repo: str) -> bool:
    wanted = normalize_repo(repo)
    matched = False
    for pattern in project.source_repos:
        normalized = "!" + normalize_repo(pattern[1:]) if is_deny_pattern(pattern) else normalize_repo(pattern)
        if negatable_match(normalized, wanted, allow_negation=True, separators="/"):
            matched = True
        elif is_deny_pattern(normalized):
            return False
    return matched


# ----------------------------------------------------------------------- destinations


def destination_permitted(project: ProjectSpec, namespace: str, *, server: str = IN_CLUSTER_SERVER,
                          cluster_name: str = IN_CLUSTER_NAME) -> bool:
    matched = False
    for item in project.destinations:
        name_ok = bool(cluster_name) and negatable_match(item.name, cluster_name, allow_negation=True)
        server_ok = bool(server) and negatable_match(item.server, server, allow_negation=True)
        namespace_ok = negatable_match(item.namespace, namespace, allow_negation=True)
        # Argo CD's precedence, kept: a failed `!name` excludes outright; a failed `!server`
        # only where the namespace matched; a failed `!namespace` only where the server matched.
        excluded = ((not name_ok and is_deny_pattern(item.name))
                    or (not server_ok and is_deny_pattern(item.server) and namespace_ok)
                    or (not namespace_ok and is_deny_pattern(item.namespace) and server_ok))
        if (server_ok or name_ok) and namespace_ok:
            matched = True
        elif excluded:
            return False
    return matched


# ----------------------------------------------------------------------- kinds


def _in_list(group: str, kind: str, name: str, entries: Iterable[ResourceKind], *, named: bool) -> bool:
    for entry in entries:
        if kind_match(entry.kind, kind) and kind_match(entry.group, group) \
                and (not named or not entry.name or kind_match(entry.name, name)):
            return True
    return False


def kind_permitted(project: ProjectSpec, group: str, kind: str, *, namespaced: bool, name: str = "") -> bool:
    if namespaced:
        whitelist = project.namespace_resource_whitelist
        white = whitelist is None or _in_list(group, kind, name, whitelist, named=False)
        black = _in_list(group, kind, name, project.namespace_resource_blacklist, named=False)
        return white and not black
    white = _in_list(group, kind, name, project.cluster_resource_whitelist, named=True)
    black = _in_list(group, kind, name, project.cluster_resource_blacklist, named=True)
    return white and not black


# ----------------------------------------------------------------------- whole apps


def repo_violation(project: ProjectSpec, repo: str) -> Violation | None:
    if repo_permitted(project, repo):
        return None
    return Violation("sourceRepos", f"repository {_redacted(repo)} is not permitted in project {project.name} "
                                    "(not in sourceRepos)")


def destination_violation(project: ProjectSpec, namespace: str, *, server: str = IN_CLUSTER_SERVER,
                          cluster_name: str = IN_CLUSTER_NAME, ref: ObjectRef | None = None) -> Violation | None:
    if destination_permitted(project, namespace, server=server, cluster_name=cluster_name):
        return None
    where = f"{ref}: " if ref is not None else ""
    return Violation("destinations", f"{where}namespace {namespace} is not a permitted destination of project "
                                     f"{project.name} (server {server})", ref)


def object_violation(project: ProjectSpec, ref: ObjectRef, *, server: str = IN_CLUSTER_SERVER,
                     cluster_name: str = IN_CLUSTER_NAME) -> Violation | None:
    """Whether one placed object (namespaced exactly when `ref.namespace` is set) may be managed:
    its kind, then its namespace. Also for prune candidates: one outside the project is never pruned."""
    namespaced = bool(ref.namespace)
    if not kind_permitted(project, ref.group, ref.kind, namespaced=namespaced, name=ref.name):
        rule = _kind_rule(project, ref, namespaced=namespaced)
        return Violation(rule, f"{ref} is not permitted in project {project.name} ({rule})", ref)
    if namespaced:
        return destination_violation(project, ref.namespace, server=server, cluster_name=cluster_name, ref=ref)
    return None


def violations(project: ProjectSpec, target: Target, objects: Iterable[KubeObject],
               is_namespaced: NamespacedLookup | None = None) -> list[Violation]:
    """Every rule the app breaks: its repository, its destination, then each desired object.

    An object is namespaced when `is_namespaced` says so (else when it names a namespace);
    a namespaced object without a namespace counts in `target.namespace`.
    """
    app_destination = destination_violation(project, target.namespace, server=target.server,
                                            cluster_name=target.cluster_name)
    found = [v for v in (repo_violation(project, target.repo), app_destination) if v is not None]
    for obj in objects:
        ref = ObjectRef.of(obj)
        scope = is_namespaced(str(obj.get("apiVersion", "")), ref.kind) if is_namespaced else None
        namespaced = bool(ref.namespace) if scope is None else scope
        placed = ObjectRef(ref.group, ref.kind, (ref.namespace or target.namespace) if namespaced else "", ref.name)
        violation = object_violation(project, placed, server=target.server, cluster_name=target.cluster_name)
        if violation is not None and violation.rule == "destinations" and app_destination is not None \
                and placed.namespace == target.namespace:
            continue  # the app's own destination is refused already: one message, not one per object
        if violation is not None and violation not in found:
            found.append(violation)
    return found


def _kind_rule(project: ProjectSpec, ref: ObjectRef, *, namespaced: bool) -> str:
    """Which list refused the kind: its blacklist when that matched, else the whitelist it is missing from."""
    if namespaced:
        black = _in_list(ref.group, ref.kind, ref.name, project.namespace_resource_blacklist, named=False)
        return "namespaceResourceBlacklist" if black else "namespaceResourceWhitelist"
    black = _in_list(ref.group, ref.kind, ref.name, project.cluster_resource_blacklist, named=True)
    return "clusterResourceBlacklist" if black else "clusterResourceWhitelist"


def _redacted(url: str) -> str:
    """The URL without a password or token: messages end up in the API and the logs."""
    parts = urlsplit(url)
    if "://" not in url or "@" not in parts.netloc:
        return url
    return urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, parts.query, parts.fragment))
