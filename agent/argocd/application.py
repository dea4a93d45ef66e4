"""An Argo CD `Application` (a dict from a parent's render) → `AppSpec`, or an error naming the field.

Accepted, field by field (anything else Argo CD would honour is `Unsupported`, never ignored):

    metadata   name (a DNS label), namespace (not used: adopted apps are not namespaced),
               labels and annotations (the app's own: notification subscriptions select on
               them), finalizers (only Argo CD's resources finalizer: `prune_on_delete`)
    spec       project; source.repoURL/targetRevision/path, source.kustomize (namePrefix,
               nameSuffix, namespace, commonLabels, commonAnnotations, images, replicas,
               labelWithoutSelector), source.directory (recurse, include, exclude);
               destination (namespace; server or name: a cluster the agent knows, looked up
               when the app reconciles, as `AppSpec.cluster`); syncPolicy
               (automated, syncOptions, retry); ignoreDifferences (group, kind, name,
               namespace, jsonPointers, managedFieldsManagers); info (shown by Argo CD's UI only)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import PurePosixPath
from typing import Any

from agent.argocd.fields import Fields, Subject
from agent.argocd.syncpolicy import parse_ignore_differences, parse_sync_policy
from agent.config.apps import AppSpec, valid_app_name, valid_project_name
from agent.model import DEFAULT_PROJECT, IN_CLUSTER, DirectorySpec, KustomizeSpec, parse_image

API_VERSION = "argoproj.io/v1alpha1"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
# The finalizer's spellings that choose foreground or background deletion: both delete the app's objects.
RESOURCES_FINALIZERS = frozenset({RESOURCES_FINALIZER, f"{RESOURCES_FINALIZER}/foreground",
                                  f"{RESOURCES_FINALIZER}/background"})
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
IN_CLUSTER_NAME = "in-cluster"
# Where objects without a namespace go when `destination.namespace` is empty: the namespace a
# TOML app without `namespace` uses (Argo CD would use its own namespace's kubeconfig default).
EMPTY_DESTINATION_NAMESPACE = "default"

_KUSTOMIZE_LATER = ("version", "forceCommonLabels", "forceCommonAnnotations", "commonAnnotationsEnvsubst",
                    "patches", "components", "ignoreMissingComponents", "kubeVersion", "apiVersions",
                    "labelIncludeTemplates")


def object_name(obj: Mapping[str, Any]) -> str:
    """metadata.name when it is a non-empty string, else ""."""
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) else ""


def parse_application(obj: Mapping[str, Any], *, file: str, parent: str = "", origin: str = "") -> AppSpec:
    """The app an Application declares; `parent` is the app whose render held it.

    Raises InvalidDefinition (or its Unsupported) naming `file`, the Application and the field.
    """
    subject = Subject(file=file, kind="Application", name=object_name(obj))
    top = Fields(subject, "", obj)
    top.string("apiVersion")
    top.string("kind")
    top.raw("status")  # written by Argo CD's controller, never an instruction
    meta = _metadata(top.sub("metadata"), subject)
    spec = top.sub("spec")
    if spec is None:
        raise subject.invalid("spec", "is required")
    top.finish()
    app = replace(_spec(spec, name=meta.name, parent=parent, origin=origin or file),
                  prune_on_delete=meta.prune_on_delete, labels=meta.labels, annotations=meta.annotations)
    spec.finish()
    return app


@dataclass(frozen=True)
class _Metadata:
    name: str
    prune_on_delete: bool
    labels: tuple[tuple[str, str], ...]
    annotations: tuple[tuple[str, str], ...]


def _metadata(meta: Fields | None, subject: Subject) -> _Metadata:
    if meta is None:
        raise subject.invalid("metadata.name", "is required")
    name = meta.string("name", required=True)
    if not valid_app_name(name):
        raise meta.invalid("name", f"{name!r} must be a DNS label (lowercase letters, digits and '-', at most 63)")
    meta.string("namespace")
    labels = tuple(sorted(meta.string_map("labels").items()))
    annotations = tuple(sorted(meta.string_map("annotations").items()))
    finalizers = meta.strings("finalizers")
    for index, finalizer in enumerate(finalizers):
        if finalizer not in RESOURCES_FINALIZERS:
            raise meta.unsupported(f"finalizers[{index}]",
                                   f"{finalizer!r} is not supported (only {RESOURCES_FINALIZER})")
    meta.finish()
    return _Metadata(name, bool(finalizers), labels, annotations)


def _spec(spec: Fields, *, name: str, parent: str, origin: str) -> AppSpec:
    project = spec.string("project") or DEFAULT_PROJECT
    if not valid_project_name(project):
        raise spec.invalid("project", f"{project!r} is not a project name")
    spec.refuse(["sources"], "(several sources) is not supported; use spec.source")
    spec.refuse(["sourceHydrator"], "is not supported")
    if spec.has("revisionHistoryLimit"):  # even 0 means something to Argo CD: keep no history
        raise spec.unsupported("revisionHistoryLimit",
                               "spec.revisionHistoryLimit is not supported yet: [agent] history_limit applies")
    for info in spec.items("info"):
        info.string("name")
        info.string("value")
        info.finish()
    source = spec.sub("source")
    if source is None:
        raise spec.invalid("source", "is required")
    repo, revision, path, directory, kustomize = _source(source)
    namespace, cluster = _destination(spec.sub("destination"), spec)
    return AppSpec(
        name=name,
        repo=repo,
        revision=revision,
        path=path,
        namespace=namespace,
        cluster=cluster,
        sync_policy=parse_sync_policy(spec.sub("syncPolicy")),
        ignore_differences=parse_ignore_differences(spec.items("ignoreDifferences")),
        directory=directory,
        kustomize=kustomize,
        project=project,
        parent=parent,
        origin=origin,
    )


def _source(source: Fields) -> tuple[str, str, str, DirectorySpec, KustomizeSpec]:
    repo = source.string("repoURL", required=True)
    revision = source.string("targetRevision") or "HEAD"
    path = source.string("path") or "."
    if path.startswith("/") or ".." in PurePosixPath(path).parts:
        raise source.invalid("path", f"{path!r} must be relative to the repository and stay inside it")
    source.refuse(["helm", "chart"], "(Helm) is not supported")
    source.refuse(["plugin"], "(config management plugins) is not supported")
    source.refuse(["ref", "name"], "(multi-source applications) is not supported")
    source.refuse(["tagPrefix"], "is not supported")
    kustomize_fields, directory_fields = source.sub("kustomize"), source.sub("directory")
    if kustomize_fields is not None and directory_fields is not None:
        raise source.invalid("kustomize", "give kustomize or directory, not both (Argo CD refuses two source types)")
    kustomize = _kustomize(kustomize_fields) if kustomize_fields is not None else KustomizeSpec()
    directory = _directory(directory_fields) if directory_fields is not None else DirectorySpec()
    source.finish()
    return repo, revision, path, directory, kustomize


def _destination(destination: Fields | None, spec: Fields) -> tuple[str, str]:
    """(namespace, cluster). The cluster is named as Argo CD names it, by server URL or by name; whether
    the agent knows it is asked when the app reconciles (an unknown one is a condition on the app, as
    a cluster Secret may declare it later)."""
    if destination is None:
        raise spec.invalid("destination", "is required")
    server, name = destination.string("server").strip(), destination.string("name").strip()
    if server and name:
        raise destination.invalid("server", "give server or name, not both")
    if not server and not name:
        raise destination.invalid("server", f"give server ({IN_CLUSTER_SERVER}) or name ({IN_CLUSTER_NAME})")
    if server and not server.startswith(("https://", "http://")):
        raise destination.invalid("server", f"{server!r} is not an API server URL")
    namespace = destination.string("namespace") or EMPTY_DESTINATION_NAMESPACE
    if not valid_app_name(namespace):
        raise destination.invalid("namespace", f"{namespace!r} is not a namespace name")
    destination.finish()
    if server.rstrip("/") == IN_CLUSTER_SERVER or name == IN_CLUSTER_NAME:
        return namespace, IN_CLUSTER
    return namespace, server.rstrip("/") or name


def _kustomize(fields: Fields) -> KustomizeSpec:
    images = fields.strings("images")
    for index, image in enumerate(images):
        try:
            parse_image(image)
        except ValueError as exc:
            raise fields.invalid(f"images[{index}]", str(exc)) from exc
    namespace = fields.string("namespace")
    if namespace and not valid_app_name(namespace):
        raise fields.invalid("namespace", f"{namespace!r} is not a namespace name")
    spec = KustomizeSpec(
        name_prefix=fields.string("namePrefix"),
        name_suffix=fields.string("nameSuffix"),
        namespace=namespace,
        common_labels=tuple(sorted(fields.string_map("commonLabels").items())),
        common_annotations=tuple(sorted(fields.string_map("commonAnnotations").items())),
        label_without_selector=fields.boolean("labelWithoutSelector"),
        images=tuple(images),
        replicas=tuple(_replica(item) for item in fields.items("replicas")),
    )
    fields.refuse(_KUSTOMIZE_LATER, "is not supported yet")
    fields.finish()
    return spec


def _replica(fields: Fields) -> tuple[str, int]:
    name = fields.string("name", required=True)
    count = fields.raw("count")
    if isinstance(count, str) and count.isdigit():
        count = int(count)  # Argo CD's count is an int-or-string
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise fields.invalid("count", f"must be a number of replicas, not {count!r}")
    fields.finish()
    return name, count


def _directory(fields: Fields) -> DirectorySpec:
    spec = DirectorySpec(
        recurse=fields.boolean("recurse"),
        include=_glob(fields, "include"),
        exclude=_glob(fields, "exclude"),
    )
    fields.refuse(["jsonnet"], "(Jsonnet) is not supported")
    fields.refuse(["disableExtensionFilter"], "is not supported yet")
    fields.finish()
    return spec


def _glob(fields: Fields, key: str) -> tuple[str, ...]:
    """Argo CD takes one glob; `{a,b}` in it lists alternatives, which the renderer expands."""
    pattern = fields.string(key)
    return (pattern,) if pattern else ()
