"""Deletes that go only to the object that was read: preconditions and what a delete did."""

from __future__ import annotations

import enum

from agent.model import KubeObject


class Deleted(enum.StrEnum):
    """What a delete did."""

    DELETED = "deleted"
    GONE = "gone"  # it was not there (any more)
    CHANGED = "changed"  # its uid or resourceVersion is no longer the one read: someone else's object now


def preconditions(live: KubeObject, *, version: bool = True) -> dict[str, str]:
    """The uid (and, with `version`, the resourceVersion) a delete of `live` must still find."""
    meta = live.get("metadata") or {}
    found = {"uid": str(meta.get("uid") or "")}
    if version:
        found["resourceVersion"] = str(meta.get("resourceVersion") or "")
    return {key: value for key, value in found.items() if value}
