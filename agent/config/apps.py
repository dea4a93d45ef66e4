"""`[[applications]]`: what to deploy, from where, and how to sync it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from agent.config.reader import Table, parse_duration
from agent.engine.ignore import jq_problem
from agent.model import (
    APP_SYNC_OPTIONS,
    DEFAULT_PROJECT,
    IN_CLUSTER,
    REFUSED_SYNC_OPTIONS,
    DirectorySpec,
    IgnoreDifference,
    KustomizeSpec,
    RetryPolicy,
    SyncPolicy,
    parse_image,
)

_APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# A project is an AppProject's name: a DNS subdomain, as Kubernetes names it.
_PROJECT_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")


def valid_app_name(name: str) -> bool:
    """An app name is a DNS label: it becomes a label value and part of every tracking id."""
    return bool(_APP_NAME.match(name))


def valid_project_name(name: str) -> bool:
    return bool(_PROJECT_NAME.match(name))


@dataclass(frozen=True)
class AppSpec:
    name: str
    repo: str
    revision: str = "HEAD"
    path: str = "."
    namespace: str = "default"
    sync_policy: SyncPolicy = field(default_factory=SyncPolicy)
    ignore_differences: tuple[IgnoreDifference, ...] = ()
    directory: DirectorySpec = field(default_factory=DirectorySpec)
    kustomize: KustomizeSpec = field(default_factory=KustomizeSpec)
    # When the app is removed from the configuration (SIGHUP), delete what it owns; else leave it.
    # An adopted Argo CD Application sets it with the `resources-finalizer.argocd.argoproj.io` finalizer.
    prune_on_delete: bool = False
    project: str = DEFAULT_PROJECT  # the project whose rules apply; one that does not exist is a runtime condition
    # The app whose render declared this one (an adopted Argo CD Application); "" when declared in TOML.
    parent: str = ""
    # Where it was declared, for messages only: `FILE: applications[N]`, or a file in the parent's
    # repository. Not compared: moving a declaration does not change the app.
    origin: str = field(default="", compare=False)
    cluster: str = IN_CLUSTER  # where it deploys: a cluster's name, or its server URL (Argo CD's destination)
    # The app's own labels and annotations (an Argo CD Application's metadata): notification
    # subscriptions select on them (`notifications.argoproj.io/subscribe.<trigger>.<service>`).
    labels: tuple[tuple[str, str], ...] = ()
    annotations: tuple[tuple[str, str], ...] = ()


def parse_app(table: Table) -> AppSpec:
    name = table.get("name", str, required=True)
    if not valid_app_name(name):
        raise table.error("name", f"{name!r} must be a DNS label (lowercase letters, digits and '-', at most 63)")
    project = table.get("project", str, DEFAULT_PROJECT)
    if not valid_project_name(project):
        raise table.error("project", f"{project!r} must be a project name (lowercase letters, digits, '-' and '.')")
    path = table.get("path", str, ".")
    if path.startswith("/") or ".." in Path(path).parts:
        raise table.error("path", f"{path!r} must be relative to the repository and stay inside it")
    spec = AppSpec(
        name=name,
        repo=table.get("repo", str, required=True),
        revision=table.get("revision", str, "HEAD"),
        path=path,
        namespace=table.get("namespace", str, "default"),
        sync_policy=_sync_policy(table.sub("sync_policy")),
        ignore_differences=tuple(_ignore_difference(t) for t in table.sub_array("ignore_differences")),
        directory=_directory_spec(table.sub("directory")),
        kustomize=_kustomize_spec(table.sub("kustomize")),
        prune_on_delete=table.get("prune_on_delete", bool, False),
        project=project,
        origin=f"{table.file}: {table.where}",
        cluster=table.get("cluster", str, IN_CLUSTER),
        labels=_string_map(table, "labels"),
        annotations=_string_map(table, "annotations"),
    )
    table.finish()
    if not spec.cluster.strip():
        raise table.error("cluster", f"must name a cluster (default {IN_CLUSTER!r}), not an empty string")
    return spec


def _sync_policy(table: Table | None) -> SyncPolicy:
    if table is None:
        return SyncPolicy()
    defaults = SyncPolicy()
    options = table.strings("options")
    _check_sync_options(table, options)
    retry_table = table.sub("retry")
    policy = SyncPolicy(
        automated=table.get("automated", bool, defaults.automated),
        prune=table.get("prune", bool, defaults.prune),
        self_heal=table.get("self_heal", bool, defaults.self_heal),
        allow_empty=table.get("allow_empty", bool, defaults.allow_empty),
        options=frozenset(options),
        retry=_retry_policy(retry_table) if retry_table else defaults.retry,
        health_timeout=table.convert("health_timeout", defaults.health_timeout, parse_duration),
    )
    table.finish()
    return policy


def _check_sync_options(table: Table, options: list[str]) -> None:
    """Every option must be one the agent implements: an option accepted and ignored would mislead."""
    for option in options:
        if option in REFUSED_SYNC_OPTIONS:
            raise table.error("options", f"sync option {option!r} is not supported: {REFUSED_SYNC_OPTIONS[option]}")
        if option not in APP_SYNC_OPTIONS:
            known = ", ".join(sorted(APP_SYNC_OPTIONS))
            raise table.error("options", f"unknown sync option {option!r} (known: {known})")
    if "Validate=false" in options and "Replace=true" not in options:
        raise table.error("options", "sync option 'Validate=false' only has an effect with 'Replace=true': the API "
                                     "server validates every server-side apply (unknown fields are always refused)")
    propagation = [option for option in options if option.startswith("PrunePropagationPolicy=")]
    if len(propagation) > 1:
        raise table.error("options", f"give one PrunePropagationPolicy, not {', '.join(propagation)}")


def _retry_policy(table: Table) -> RetryPolicy:
    defaults = RetryPolicy()
    factor = table.get("backoff_factor", int, 2)
    if factor < 1:
        raise table.error("backoff_factor", f"must be at least 1, not {factor}")
    retry = RetryPolicy(
        limit=table.get("limit", int, 5),
        backoff_duration=table.convert("backoff_duration", defaults.backoff_duration, parse_duration),
        backoff_factor=float(factor),
        backoff_max_duration=table.convert("backoff_max_duration", defaults.backoff_max_duration, parse_duration),
    )
    if retry.limit < 0:
        raise table.error("limit", f"must not be negative, not {retry.limit}")
    table.finish()
    return retry


def _ignore_difference(table: Table) -> IgnoreDifference:
    rule = IgnoreDifference(
        kind=table.get("kind", str, required=True),
        group=table.get("group", str, ""),
        name=table.get("name", str, ""),
        namespace=table.get("namespace", str, ""),
        json_pointers=tuple(table.strings("json_pointers")),
        managed_fields_managers=tuple(table.strings("managed_fields_managers")),
        jq_path_expressions=tuple(table.strings("jq_path_expressions")),
    )
    for pointer in rule.json_pointers:
        if not pointer.startswith("/"):
            raise table.error("json_pointers", f"{pointer!r} is not a JSON pointer (it must start with '/')")
    for index, expression in enumerate(rule.jq_path_expressions):
        if problem := jq_problem(expression):
            raise table.error(f"jq_path_expressions[{index}]", problem)
    if not rule.json_pointers and not rule.managed_fields_managers and not rule.jq_path_expressions:
        raise table.error("json_pointers", "give json_pointers, jq_path_expressions or managed_fields_managers")
    if not rule.kind:
        raise table.error("kind", 'must not be empty (use "*" for every kind)')
    table.finish()
    return rule


def _directory_spec(table: Table | None) -> DirectorySpec:
    if table is None:
        return DirectorySpec()
    spec = DirectorySpec(
        recurse=table.get("recurse", bool, False), include=_globs(table, "include"), exclude=_globs(table, "exclude"),
    )
    table.finish()
    return spec


def _globs(table: Table, key: str) -> tuple[str, ...]:
    """One glob or an array of them (Argo CD takes one, with `{a,b}` alternatives)."""
    table.used.add(key)
    value = table.data.get(key, [])
    patterns = [value] if isinstance(value, str) else value
    if not isinstance(patterns, list) or not all(isinstance(p, str) and p for p in patterns):
        raise table.error(key, f"must be a glob or an array of globs, not {value!r}")
    return tuple(patterns)


def _kustomize_spec(table: Table | None) -> KustomizeSpec:
    if table is None:
        return KustomizeSpec()
    images = table.strings("images")
    for index, image in enumerate(images):
        try:
            parse_image(image)
        except ValueError as exc:
            raise table.error(f"images[{index}]", str(exc)) from exc
    namespace = table.get("namespace", str, "")
    if namespace and not _APP_NAME.match(namespace):
        raise table.error("namespace", f"{namespace!r} must be a DNS label (lowercase letters, digits and '-')")
    spec = KustomizeSpec(
        name_prefix=table.get("name_prefix", str, ""),
        name_suffix=table.get("name_suffix", str, ""),
        namespace=namespace,
        common_labels=_string_map(table, "common_labels"),
        common_annotations=_string_map(table, "common_annotations"),
        label_without_selector=table.get("label_without_selector", bool, False),
        images=tuple(images),
        replicas=tuple(_replica(table, index, text) for index, text in enumerate(table.strings("replicas"))),
    )
    table.finish()
    return spec


def _string_map(table: Table, key: str) -> tuple[tuple[str, str], ...]:
    value = table.get(key, dict, {})
    for name, item in value.items():
        if not isinstance(item, str):
            raise table.error(f"{key}.{name}", f"must be a string, not {item!r}")
    return tuple(sorted(value.items()))


def _replica(table: Table, index: int, text: str) -> tuple[str, int]:
    name, _, count = text.rpartition("=")
    if not name or not re.fullmatch(r"[0-9]+", count):
        raise table.error(f"replicas[{index}]", f"{text!r} must be NAME=COUNT, like \"payment-service=3\"")
    return name, int(count)
