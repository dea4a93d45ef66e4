"""Which app declares which object, across every app of this agent: the input of the ownership rules
(agent.engine.ownership) that no single app's reconcile could know.

An app's declarations are the desired objects of its last good comparison (its status's
resources, which the snapshot keeps, so they are known again right after a restart). The
AppTable updates the index with every state it stores; an app is `known` once its
declarations are (a comparison succeeded, or a snapshot remembered one).
"""

from __future__ import annotations

from collections.abc import Iterable

from agent.model import AppStatus, Claims, ObjectRef, SyncStatus
from agent.multimap import Multimap


class ClaimIndex:
    def __init__(self) -> None:
        self._declared: dict[str, frozenset[ObjectRef]] = {}
        self._by_ref: Multimap[ObjectRef, str] = Multimap()
        self._epochs: dict[str, int] = {}

    def update(self, app: str, status: AppStatus) -> set[str]:
        """Take the app's declarations from its status; returns the other apps whose view changed (an
        object they declare gained or lost a claimant): they should compare again."""
        if not status.resources and status.sync_status is SyncStatus.UNKNOWN and app not in self._declared:
            return set()  # never compared: nothing known yet
        refs = frozenset(resource.ref for resource in status.resources)
        previous = self._declared.get(app)
        if previous == refs:
            return set()
        self._declared[app] = refs
        changed = refs ^ (previous or frozenset())
        for ref in changed:
            if ref in refs:
                self._by_ref.add(ref, app)
            else:
                self._by_ref.discard(ref, app)
        return self._touch(app, changed)

    def forget(self, app: str) -> set[str]:
        """The app left the configuration: it declares nothing, and nothing is known of it."""
        refs = self._declared.pop(app, frozenset())
        for ref in refs:
            self._by_ref.discard(ref, app)
        self._epochs.pop(app, None)
        return self._touch(app, refs)

    def _touch(self, app: str, refs: Iterable[ObjectRef]) -> set[str]:
        affected = {other for ref in refs for other in self._by_ref.get(ref) if other != app}
        for other in affected:
            self._epochs[other] = self._epochs.get(other, 0) + 1
        return affected

    def epoch(self, app: str) -> int:
        """Moves whenever another app starts or stops declaring one of this app's objects."""
        return self._epochs.get(app, 0)

    def claims(self, app: str, refs: Iterable[ObjectRef], *, owners: Iterable[str] | None = None) -> Claims:
        """What the other apps declare of `refs` (the app's desired and live objects). `owners`: the
        apps whose knownness matters (the owners the live objects' tracking ids name): with ten
        thousand apps, a set of every known app per reconcile is most of what claims cost."""
        declared = {}
        for ref in refs:
            others = self._by_ref.get(ref)
            if len(others) > 1 or (others and app not in others):
                declared[ref] = frozenset(others) - {app}
        if owners is None:
            return Claims(declared, frozenset(self._declared) - {app})
        return Claims(declared, frozenset(owner for owner in owners if owner != app and owner in self._declared))
