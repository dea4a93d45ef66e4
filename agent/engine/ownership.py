"""Who may write an object two apps declare (Argo CD's shared resources), and what both are told. Pure.

- An object whose tracking id names another app is never taken over while that app still
  declares it (or while what it declares is not known): the app that applied it first
  keeps it, so two apps never relabel it back and forth. With `FailOnSharedResource=true`
  the other app's sync fails instead of skipping it.
- When the owner no longer declares it and another app does, it passes to that app: the
  owner leaves it in place instead of pruning it, and the other app applies it.
- An existing object no app manages is adopted unless the project refuses it
  (`adopt_existing = false`).
Both apps report a SharedResourceWarning naming the object and the other app.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.engine.desired import tracking_owner
from agent.model import Claims, Condition, ConditionType, KubeObject, ObjectRef, PlannedObject


def desired_owner_rule(app: str, ref: ObjectRef, live: KubeObject | None, claims: Claims, *,
                       adopt_existing: bool) -> tuple[str, bool]:
    """(why the app must not apply `ref`, whether that is because another app owns it); ('', False): it may."""
    if live is None:
        return "", False
    owner = tracking_owner(live)
    if owner == app:
        return "", False
    if not owner:
        if adopt_existing:
            return "", False
        return (f"{ref} exists and no application manages it; the project does not allow adopting it "
                "(adopt_existing = false)"), False
    if owner in claims.known and owner not in claims.others(ref):
        return "", False  # the owner no longer declares it: it passes to this app
    return f"{ref} is owned by application {owner!r}, which applied it first", True


def handed_over(ref: ObjectRef, claims: Claims) -> str:
    """The app an object this app no longer declares passes to ('' when no other app declares it)."""
    others = sorted(claims.others(ref))
    return others[0] if others else ""


def shared_warnings(app: str, objects: Sequence[PlannedObject], claims: Claims) -> list[Condition]:
    """A SharedResourceWarning per desired object another app owns or also declares, or that exists
    unmanaged and may not be adopted."""
    found = []
    for obj in objects:
        owner = tracking_owner(obj.live) if obj.live is not None else ""
        others = sorted(claims.others(obj.ref) - {owner})
        also = f"; also declared by application {', '.join(map(repr, others))}" if others else ""
        if obj.shared:
            message = f"{obj.blocked}: not applied{also}"
        elif obj.blocked and obj.live is not None and not owner:
            message = obj.blocked
        elif others:
            message = f"{obj.ref} is also declared by application {', '.join(map(repr, others))}"
        else:
            continue
        found.append(Condition(ConditionType.SHARED_RESOURCE_WARNING, message))
    return found
