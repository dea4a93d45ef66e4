"""What to start, change, keep and remove as definitions come and go. Pure decisions.

    next_generated(previous, outcome, policy, origin=)   one ApplicationSet's apps after a generation
    next_removed_set(previous, policy, origin=, prune=)  the apps of a set its parent no longer declares
    next_adopted(previous, definitions, prune=)          the Applications a parent declares directly
    claim_names(apps, taken)                             the first declaration of a name keeps it
    check_projects(apps, projects)                       apps naming a project that exists nowhere

Never delete on doubt (argo-cd#14318, #9227, #18480): a generator error, a set that cannot be
read, a generator that suddenly yields nothing, or a definition that cannot be named keeps every
app as it is and says why. Going to zero needs the set's `gitops-agent.io/allow-empty: "true"`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from agent.argocd.applicationset import ALLOW_EMPTY_ANNOTATION, Generated, GenerationFailed, SetPolicy
from agent.argocd.definitions import Definitions
from agent.argocd.fields import Refused
from agent.config.apps import AppSpec
from agent.model import DEFAULT_PROJECT, Condition, ConditionType

_LISTED = 5  # names quoted in a message before "and N more"


@dataclass(frozen=True)
class Removal:
    """An app to stop; `delete_resources` when its objects go with it (the resources finalizer)."""

    name: str
    delete_resources: bool


@dataclass(frozen=True)
class Change:
    create: tuple[AppSpec, ...] = ()
    update: tuple[AppSpec, ...] = ()  # running apps whose spec changed: run with this one
    delete: tuple[Removal, ...] = ()
    keep: tuple[str, ...] = ()  # running apps left exactly as they are
    refused: tuple[Refused, ...] = ()  # declared but not adoptable: shown Unknown, nothing of them applied
    requires_pruning: tuple[str, ...] = ()  # gone from Git, kept because the parent does not prune
    conditions: tuple[Condition, ...] = ()


def next_generated(previous: Mapping[str, AppSpec], outcome: Generated | GenerationFailed, policy: SetPolicy,
                   *, origin: str) -> Change:
    """`previous`: the apps this set generated that run now. `origin`: the set, for messages."""
    if isinstance(outcome, GenerationFailed):
        return Change(keep=tuple(sorted(previous)), conditions=(_kept(outcome.message, previous),))
    if previous and not outcome.names and not policy.allow_empty:
        message = (f"{origin}: generated no applications; its {len(previous)} "
                   f"({_names(previous)}) are kept. To let it remove them all, annotate the ApplicationSet "
                   f'{ALLOW_EMPTY_ANNOTATION}: "true"')
        return Change(keep=tuple(sorted(previous)), conditions=(Condition(ConditionType.COMPARISON_ERROR, message),))
    sync = policy.applications_sync
    create = tuple(app for app in outcome.apps if app.name not in previous)
    changed = tuple(app for app in outcome.apps if app.name in previous and app != previous[app.name])
    refused_running = {refusal.name for refusal in outcome.refused if refusal.name in previous}
    gone = sorted(set(previous) - outcome.names)
    update = changed if sync.allows_update else ()
    updated = {app.name for app in update} | (refused_running if sync.allows_update else set())
    delete = tuple(Removal(name, previous[name].prune_on_delete) for name in gone) if sync.allows_delete else ()
    deleted = {removal.name for removal in delete}
    refused = tuple(refusal for refusal in outcome.refused
                    if refusal.name not in previous or sync.allows_update)
    return Change(
        create=create, update=update, delete=delete, refused=refused,
        keep=tuple(sorted(set(previous) - updated - deleted)),
        conditions=tuple(Condition(ConditionType.INVALID_SPEC_ERROR, refusal.message)
                         for refusal in refused if not refusal.unsupported),
    )


def next_removed_set(previous: Mapping[str, AppSpec], policy: SetPolicy, *, origin: str, prune: bool) -> Change:
    """A set gone from its parent's (successful) render: like Argo CD deleting it, its apps go too,
    unless the parent does not prune or the set's applicationsSync forbids deleting."""
    if not prune:
        return Change(keep=tuple(sorted(previous)), requires_pruning=tuple(sorted(previous)))
    return next_generated(previous, Generated(), replace(policy, allow_empty=True), origin=origin)


def next_adopted(previous: Mapping[str, AppSpec], definitions: Definitions, *, prune: bool) -> Change:
    """The Applications a parent declares directly, after a successful render of it.

    `previous`: the apps adopted from this parent's Application files that run now. `prune`:
    whether this sync of the parent prunes (automated with prune, or a sync asked to prune); if
    not, an Application gone from Git keeps running and is reported as requiring pruning, as
    Argo CD leaves its Application object.
    """
    current = {app.name: app for app in definitions.apps}
    refused = tuple(refusal for refusal in definitions.refused if refusal.kind == "Application")
    named = current.keys() | {refusal.name for refusal in refused}
    gone = sorted(set(previous) - named)
    conditions = definitions.conditions
    delete: tuple[Removal, ...] = ()
    requires_pruning: tuple[str, ...] = ()
    if gone and not definitions.complete:
        conditions += (_kept("some definitions could not be read", {name: previous[name] for name in gone}),)
    elif prune:
        delete = tuple(Removal(name, previous[name].prune_on_delete) for name in gone)
    else:
        requires_pruning = tuple(gone)
    update = tuple(app for name, app in current.items() if name in previous and app != previous[name])
    running_refused = {refusal.name for refusal in refused if refusal.name in previous}
    return Change(
        create=tuple(app for name, app in current.items() if name not in previous),
        update=update,
        delete=delete,
        keep=tuple(sorted(set(previous) - {app.name for app in update} - {r.name for r in delete}
                          - running_refused)),
        refused=refused,
        requires_pruning=requires_pruning,
        conditions=conditions,
    )


def claim_names(apps: Sequence[AppSpec], taken: Mapping[str, str]) -> tuple[tuple[AppSpec, ...], tuple[Condition, ...]]:
    """The apps whose names are free. `taken` maps each name declared elsewhere (TOML apps, other
    parents, other sets) to where: the declaration that came first keeps running."""
    kept, conditions = [], []
    for app in apps:
        if app.name in taken:
            conditions.append(Condition(ConditionType.INVALID_SPEC_ERROR,
                                        f"application {app.name} is declared twice: in {taken[app.name]} and in "
                                        f"{app.origin}; the one in {taken[app.name]} keeps running"))
        else:
            kept.append(app)
    return tuple(kept), tuple(conditions)


def check_projects(apps: Sequence[AppSpec], projects: Iterable[str]) -> tuple[tuple[AppSpec, ...], tuple[Refused, ...]]:
    """(the apps whose project exists, a refusal for each other one). `projects`: every project
    declared anywhere, TOML and Git; Argo CD's `default` always exists."""
    known = {DEFAULT_PROJECT, *projects}
    kept, refused = [], []
    for app in apps:
        if app.project in known:
            kept.append(app)
        else:
            refused.append(Refused(kind="Application", name=app.name, origin=app.origin, unsupported=False,
                                   project=app.project,
                                   message=f"{app.origin}: Application {app.name}: spec.project: project "
                                           f"{app.project!r} does not exist (known: {', '.join(sorted(known))})"))
    return tuple(kept), tuple(refused)


def _kept(reason: str, previous: Mapping[str, AppSpec]) -> Condition:
    message = f"{reason}; no application is removed" if not previous else \
        f"{reason}; the {len(previous)} application(s) ({_names(previous)}) are kept as they are"
    return Condition(ConditionType.COMPARISON_ERROR, message)


def _names(apps: Mapping[str, AppSpec]) -> str:
    names = sorted(apps)
    more = f" and {len(names) - _LISTED} more" if len(names) > _LISTED else ""
    return ", ".join(names[:_LISTED]) + more
