"""An Argo CD `ApplicationSet` → `ApplicationSetSpec`, and the apps it generates. Pure.

    parse_application_set(obj, file=, parent=)   the set, or InvalidDefinition naming the field
    generate(spec, trees)                         Generated apps | NeedsTrees (read these, ask again)
                                                  | GenerationFailed (keep every app as it is)

What to do with the result (create, update, delete, keep) is `agent.argocd.lifecycle.next_generated`.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.argocd.application import API_VERSION, RESOURCES_FINALIZER, object_name, parse_application
from agent.argocd.fields import Fields, InvalidDefinition, Refused, Subject, Unsupported, declared_project
from agent.argocd.generators import Generator, parse_generator
from agent.argocd.params import GenerationError, NeedTrees, TreeRequest, Trees, generate_params
from agent.argocd.templates import MISSING_KEY_OPTIONS, Syntax, TemplateError, render_value
from agent.config.apps import AppSpec, valid_app_name

# On an ApplicationSet: "true" lets its generators go from some apps to none, which deletes them all.
# Without it a generator that suddenly yields nothing is taken for a mistake (argo-cd#9227, #18480).
ALLOW_EMPTY_ANNOTATION = "gitops-agent.io/allow-empty"
_TEMPLATE_METADATA = ("name", "namespace", "labels", "annotations", "finalizers")


class ApplicationsSync(enum.StrEnum):
    """`spec.syncPolicy.applicationsSync`: what the set may do to the apps it generated."""

    SYNC = "sync"  # create, update and delete (Argo CD's default)
    CREATE_ONLY = "create-only"
    CREATE_UPDATE = "create-update"
    CREATE_DELETE = "create-delete"

    @property
    def allows_update(self) -> bool:
        return self in (ApplicationsSync.SYNC, ApplicationsSync.CREATE_UPDATE)

    @property
    def allows_delete(self) -> bool:
        return self in (ApplicationsSync.SYNC, ApplicationsSync.CREATE_DELETE)


@dataclass(frozen=True)
class SetPolicy:
    applications_sync: ApplicationsSync = ApplicationsSync.SYNC
    # Generated apps get no resources finalizer: deleting one leaves its objects in the cluster.
    preserve_resources_on_deletion: bool = False
    allow_empty: bool = False  # the ALLOW_EMPTY_ANNOTATION


@dataclass(frozen=True)
class ApplicationSetSpec:
    name: str
    file: str
    generators: tuple[Generator, ...]
    template: Mapping[str, Any]
    syntax: Syntax = field(default_factory=Syntax)
    policy: SetPolicy = field(default_factory=SetPolicy)
    parent: str = ""

    @property
    def origin(self) -> str:
        return f"{self.file}: ApplicationSet {self.name}"


@dataclass(frozen=True)
class Generated:
    """Every app the set generates now: adopted specs, and the ones refused (shown `Unknown`).
    `objects` holds each generated Application as rendered from the template, by name (kept so that
    a restart can run the app again before the set is generated anew)."""

    apps: tuple[AppSpec, ...] = ()
    refused: tuple[Refused, ...] = ()
    objects: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, compare=False)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(app.name for app in self.apps) | {refusal.name for refusal in self.refused}


@dataclass(frozen=True)
class NeedsTrees:
    """Read these (the listing of each repository at its revision, and the files named) and generate again."""

    requests: tuple[TreeRequest, ...]


@dataclass(frozen=True)
class GenerationFailed:
    """The set cannot say which apps it means: every app it generated before stays as it is."""

    message: str


def parse_application_set(obj: Mapping[str, Any], *, file: str, parent: str = "") -> ApplicationSetSpec:
    """Raises InvalidDefinition (or its Unsupported) naming `file`, the ApplicationSet and the field."""
    subject = Subject(file=file, kind="ApplicationSet", name=object_name(obj))
    top = Fields(subject, "", obj)
    top.string("apiVersion")
    top.string("kind")
    top.raw("status")
    meta = top.sub("metadata")
    if meta is None:
        raise subject.invalid("metadata.name", "is required")
    name = meta.string("name", required=True)
    meta.string("namespace")
    meta.string_map("labels")
    annotations = meta.string_map("annotations")
    meta.refuse(["finalizers"], "is not supported")
    meta.finish()
    spec = top.sub("spec")
    if spec is None:
        raise subject.invalid("spec", "is required")
    top.finish()
    result = ApplicationSetSpec(
        name=name, file=file, parent=parent,
        syntax=_syntax(spec),
        generators=_generators(spec),
        template=_template(spec),
        policy=_policy(spec.sub("syncPolicy"), allow_empty=annotations.get(ALLOW_EMPTY_ANNOTATION) == "true"),
    )
    spec.refuse(["templatePatch"], "is not supported yet")
    spec.refuse(["strategy"], "(progressive syncs) is not supported yet")
    spec.refuse(["ignoreApplicationDifferences", "preservedFields"], "is not supported")
    spec.refuse(["applyNestedSelectors"], "(post selectors) is not supported yet")
    spec.finish()
    return result


def _syntax(spec: Fields) -> Syntax:
    go = spec.boolean("goTemplate")
    options = spec.strings("goTemplateOptions")
    for index, option in enumerate(options):
        if option not in MISSING_KEY_OPTIONS:
            raise spec.unsupported(f"goTemplateOptions[{index}]",
                                   f"{option!r} is not supported (supported: {', '.join(MISSING_KEY_OPTIONS)})")
    missing_key_error = bool(options) and options[-1] == "missingkey=error"  # Go: the last option wins
    return Syntax(go=go, missing_key_error=go and missing_key_error)


def _generators(spec: Fields) -> tuple[Generator, ...]:
    items = spec.items("generators")
    if not items:
        raise spec.invalid("generators", "give at least one generator")
    return tuple(parse_generator(item) for item in items)


def _template(spec: Fields) -> Mapping[str, Any]:
    template = spec.sub("template")
    if template is None:
        raise spec.invalid("template", "is required")
    meta = template.sub("metadata")
    if meta is None:
        raise template.invalid("metadata", "is required")
    for key in _TEMPLATE_METADATA:
        meta.raw(key)
    meta.finish()
    if template.sub("spec") is None:
        raise template.invalid("spec", "is required")
    template.finish()
    return template.data


def _policy(fields: Fields | None, *, allow_empty: bool) -> SetPolicy:
    if fields is None:
        return SetPolicy(allow_empty=allow_empty)
    text = fields.string("applicationsSync") or ApplicationsSync.SYNC.value
    try:
        sync = ApplicationsSync(text)
    except ValueError:
        known = ", ".join(policy.value for policy in ApplicationsSync)
        raise fields.invalid("applicationsSync", f"{text!r} is not one of {known}") from None
    policy = SetPolicy(applications_sync=sync,
                       preserve_resources_on_deletion=fields.boolean("preserveResourcesOnDeletion"),
                       allow_empty=allow_empty)
    fields.finish()
    return policy


def generate(spec: ApplicationSetSpec, trees: Trees) -> Generated | NeedsTrees | GenerationFailed:
    """The apps `spec` generates from the repository trees given."""
    objects: list[dict[str, Any]] = []
    needed: list[TreeRequest] = []
    for index, generator in enumerate(spec.generators):
        try:
            params = generate_params(generator, syntax=spec.syntax, trees=trees)
        except NeedTrees as need:
            needed.extend(request for request in need.requests if request not in needed)
            continue
        except GenerationError as exc:
            return GenerationFailed(f"{spec.origin}: spec.generators[{index}]: {exc}")
        template = merged_template(generator.template, spec.template)
        for params_set in params:
            try:
                objects.append(_application(template, params_set, spec))
            except TemplateError as exc:
                return GenerationFailed(f"{spec.origin}: spec.template: {exc}")
    if needed:
        return NeedsTrees(tuple(needed))
    return _adopt(objects, spec)


def _application(template: Mapping[str, Any], params: Mapping[str, Any], spec: ApplicationSetSpec) -> dict[str, Any]:
    rendered = render_value(dict(template), params, spec.syntax)
    metadata = dict(rendered.get("metadata") or {})
    # As Argo CD: a generated app deletes its objects with it unless the set preserves them or
    # its template chose its own finalizers.
    if not spec.policy.preserve_resources_on_deletion and not metadata.get("finalizers"):
        metadata["finalizers"] = [RESOURCES_FINALIZER]
    return {"apiVersion": API_VERSION, "kind": "Application", "metadata": metadata, "spec": rendered.get("spec")}


def _adopt(objects: list[dict[str, Any]], spec: ApplicationSetSpec) -> Generated | GenerationFailed:
    apps: list[AppSpec] = []
    refused: list[Refused] = []
    seen: dict[str, Mapping[str, Any]] = {}
    for obj in objects:
        name = object_name(obj)
        if not valid_app_name(name):
            # Without a sound name there is no telling which app this was: doubt, so change nothing.
            return GenerationFailed(f"{spec.origin}: a generated Application has no valid name ({name!r}); "
                                    "every name must be a DNS label")
        if name in seen:
            return GenerationFailed(f"{spec.origin}: generates two Applications named {name!r}")
        seen[name] = obj
        try:
            apps.append(parse_application(obj, file=spec.file, parent=spec.parent, origin=spec.origin))
        except InvalidDefinition as exc:
            refused.append(Refused(kind="Application", name=name, origin=spec.origin,
                                   message=f"{exc} (generated by ApplicationSet {spec.name})",
                                   unsupported=isinstance(exc, Unsupported), project=declared_project(obj)))
    return Generated(apps=tuple(apps), refused=tuple(refused), objects=seen)


def merged_template(generator_template: Mapping[str, Any], spec_template: Mapping[str, Any]) -> dict[str, Any]:
    """A generator's own template over the set's: each field the generator's template leaves empty
    comes from the set's, maps merged key by key (Argo CD's mergo.Merge without override)."""
    merged = dict(generator_template)
    for key, value in spec_template.items():
        mine = merged.get(key)
        if isinstance(mine, dict) and isinstance(value, dict):
            merged[key] = merged_template(mine, value)
        elif mine in (None, "", [], {}, False, 0):
            merged[key] = value
    return merged
