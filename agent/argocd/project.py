"""An Argo CD `AppProject` (a dict from a parent's render) → `ProjectSpec`.

Everything a project restricts is carried or refused: a rule left out would allow more than the
project means to (signature keys, source namespaces, impersonation), so it is `Unsupported`.
Descriptions are read and dropped where ProjectSpec has no place for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent.argocd.application import object_name
from agent.argocd.fields import Fields, Subject
from agent.config.apps import valid_project_name
from agent.model import Destination, ProjectRole, ProjectSpec, ResourceKind, SyncWindow

_WINDOW_KINDS = ("allow", "deny")


def parse_app_project(obj: Mapping[str, Any], *, file: str) -> ProjectSpec:
    """Raises InvalidDefinition (or its Unsupported) naming `file`, the AppProject and the field."""
    subject = Subject(file=file, kind="AppProject", name=object_name(obj))
    top = Fields(subject, "", obj)
    top.string("apiVersion")
    top.string("kind")
    top.raw("status")
    meta = top.sub("metadata")
    if meta is None:
        raise subject.invalid("metadata.name", "is required")
    name = meta.string("name", required=True)
    if not valid_project_name(name):
        raise meta.invalid("name", f"{name!r} is not a project name (lowercase letters, digits, '-' and '.')")
    meta.string("namespace")
    meta.string_map("labels")
    meta.string_map("annotations")
    meta.refuse(["finalizers"], "is not supported")
    meta.finish()
    spec = top.sub("spec") or Fields(subject, "spec", {})
    top.finish()
    project = _spec(spec, name=name, origin=file)
    spec.finish()
    return project


def _spec(spec: Fields, *, name: str, origin: str) -> ProjectSpec:
    namespace_whitelist = tuple(_kind(item, cluster=False) for item in spec.items("namespaceResourceWhitelist"))
    project = ProjectSpec(
        name=name,
        description=spec.string("description"),
        source_repos=tuple(spec.strings("sourceRepos")),
        destinations=tuple(_destination(item) for item in spec.items("destinations")),
        cluster_resource_whitelist=tuple(_kind(item, cluster=True) for item in spec.items("clusterResourceWhitelist")),
        cluster_resource_blacklist=tuple(_kind(item, cluster=True) for item in spec.items("clusterResourceBlacklist")),
        # Argo CD: an empty or absent namespaced whitelist allows every namespaced kind.
        namespace_resource_whitelist=namespace_whitelist or None,
        namespace_resource_blacklist=tuple(_kind(item, cluster=False)
                                           for item in spec.items("namespaceResourceBlacklist")),
        roles=tuple(_role(item) for item in spec.items("roles")),
        sync_windows=tuple(_window(item) for item in spec.items("syncWindows")),
        origin=origin,
    )
    spec.refuse(["signatureKeys", "sourceIntegrity"], "(signed commits) is not supported yet")
    spec.refuse(["sourceNamespaces"], "(applications in other namespaces) is not supported")
    spec.refuse(["destinationServiceAccounts"], "(impersonation) is not supported yet")
    spec.refuse(["permitOnlyProjectScopedClusters"], "is not supported yet")
    spec.refuse(["orphanedResources"], "(orphaned resource monitoring) is not supported yet")
    return project


def _destination(fields: Fields) -> Destination:
    destination = Destination(server=fields.string("server"), name=fields.string("name"),
                              namespace=fields.string("namespace"))
    if not destination.server and not destination.name:
        raise fields.invalid("server", "give server or name (globs allowed, '*' for any)")
    fields.finish()
    return destination


def _kind(fields: Fields, *, cluster: bool) -> ResourceKind:
    group = fields.raw("group")
    group = "" if group is None else group  # the core group: '' or left out
    if not isinstance(group, str):
        raise fields.invalid("group", f"must be a string ('' for the core group), not {group!r}")
    kind = fields.string("kind", required=True)
    name = fields.string("name") if cluster else ""
    fields.finish()
    return ResourceKind(group=group, kind=kind, name=name)


def _role(fields: Fields) -> ProjectRole:
    role = ProjectRole(name=fields.string("name", required=True), description=fields.string("description"),
                       policies=tuple(fields.strings("policies")), groups=tuple(fields.strings("groups")))
    fields.refuse(["jwtTokens"], "(project tokens) is not supported")
    fields.finish()
    return role


def _window(fields: Fields) -> SyncWindow:
    kind = fields.string("kind", required=True)
    if kind not in _WINDOW_KINDS:
        raise fields.invalid("kind", f"must be allow or deny, not {kind!r}")
    window = SyncWindow(
        kind=kind,
        schedule=fields.string("schedule", required=True),
        duration=fields.string("duration", required=True),
        applications=tuple(fields.strings("applications")),
        namespaces=tuple(fields.strings("namespaces")),
        clusters=tuple(fields.strings("clusters")),
        manual_sync=fields.boolean("manualSync"),
        time_zone=fields.string("timeZone") or "UTC",
    )
    fields.string("description")
    fields.refuse(["andOperator"], "is not supported yet")
    fields.refuse(["syncOverrun"], "is not supported yet")
    fields.finish()
    return window
