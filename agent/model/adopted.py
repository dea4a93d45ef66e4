"""What a parent app adopted from its render (Argo CD definitions: an "app of apps"), as plain data.

It is part of the parent's AppState, so the snapshot keeps it: after a restart the children run
again, with their own state and history, before the parent renders again (and while its
repository cannot be reached). agent.argocd.parent decides it; agent.controller.adoption acts on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.model.core import Condition, Manifest, ResourceState


@dataclass(frozen=True)
class AdoptedChild:
    """One app a parent declares, and where from.

    `definition` is the Application the app runs from (as rendered, a generated one after its
    template was filled in): the app's spec is parsed from it again after a restart. `refusal`,
    when set, is why the app is shown `Unknown` and not run; `definition` then stays the last one
    that could run (or the refused one, for an app that never ran).
    """

    name: str
    source: str  # "": one of the parent's Application files; else the ApplicationSet that generated it
    file: str  # the file it was declared in (the set's file for a generated app)
    origin: str  # where, for messages: the file (and document), or the set
    definition: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)
    refusal: str = ""
    project: str = ""  # the project the definition names (also when it is refused)


@dataclass(frozen=True)
class Adopted:
    """A parent's adoption: the definitions of its last successful render, the children it runs or
    shows, and what its own status says of them (overlaid on the status of its own objects)."""

    definitions: tuple[Manifest, ...] = ()
    children: tuple[AdoptedChild, ...] = ()
    resources: tuple[ResourceState, ...] = ()  # one per definition, with its state
    conditions: tuple[Condition, ...] = ()  # invalid definitions, names declared twice, sets kept on doubt
    in_sync: bool = True  # every definition adopted and nothing left requiring pruning

    def child(self, name: str) -> AdoptedChild | None:
        return next((child for child in self.children if child.name == name), None)

    @property
    def names(self) -> frozenset[str]:
        return frozenset(child.name for child in self.children)
