"""Skip the dry-run of objects that provably did not change, and keep the books for it. Pure.

A comparison costs one server-side dry-run apply (a PATCH) per existing object. When
the desired object is byte-for-byte what it was (same fingerprint, which also covers
the ignore rules that apply to it) and the live object is the very version we saw in
sync (same `resourceVersion`, which every write to the object moves) or has the same
content (same digest of everything but status and server bookkeeping, so a controller
updating only the status does not count), the dry-run can only answer "unchanged": it
is skipped. A restart with a snapshot therefore makes no PATCH for an app in sync.

The proof is recorded only from what the server said: the response of our own apply,
or a live object a dry-run comparison found equal. Never from an object read later,
which a controller may have changed since (an HPA scaling a Deployment).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from sys import intern

from agent.engine.diff import LAST_APPLIED, SERVER_METADATA, matching_rules
from agent.engine.plan import Action, Plan, owned_by
from agent.model import (
    AppliedVersion,
    ChangeAction,
    ChangeSet,
    IgnoreDifference,
    InventoryEntry,
    KubeObject,
    ObjectRef,
)

FINGERPRINT_VERSION = "1"  # bump when what the comparison depends on changes


def fingerprint(desired: KubeObject, rules: Sequence[IgnoreDifference] = ()) -> str:
    """A hash of the desired object as applied, plus the ignore rules its comparison uses."""
    ref = ObjectRef.of(desired)
    material = {"v": FINGERPRINT_VERSION, "object": desired,
                "ignore": [asdict(rule) for rule in matching_rules(ref, rules)]}
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(encoded.encode()).hexdigest()


def fingerprints(desired: Sequence[KubeObject], rules: Sequence[IgnoreDifference] = ()) -> dict[ObjectRef, str]:
    return {ObjectRef.of(obj): fingerprint(obj, rules) for obj in desired}


# Annotations a controller or client stamps on objects we apply; they never mean drift.
IGNORED_ANNOTATIONS = frozenset({"deployment.kubernetes.io/revision", LAST_APPLIED})


def live_digest(obj: KubeObject) -> str:
    """A hash of what a live object says, without status and server bookkeeping.

    Equal digests mean nobody changed the object's content; a status update keeps it.
    """
    meta = {key: value for key, value in (obj.get("metadata") or {}).items() if key not in SERVER_METADATA}
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        meta["annotations"] = {key: value for key, value in annotations.items() if key not in IGNORED_ANNOTATIONS}
    content = {key: value for key, value in obj.items() if key not in ("status", "metadata")}
    content["metadata"] = meta
    encoded = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    # Interned: the watch cache and the app's proof of sync hold the same digest of the same object.
    return intern(hashlib.sha256(encoded.encode()).hexdigest())


def resource_version(obj: KubeObject | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def proven_unchanged(prints: Mapping[ObjectRef, str], live: Mapping[ObjectRef, KubeObject],
                     applied: Mapping[ObjectRef, AppliedVersion]) -> frozenset[ObjectRef]:
    """Desired objects whose fingerprint equals the recorded proof and whose live object is the
    recorded version, or has the recorded content."""
    proven = set()
    for ref, print_ in prints.items():
        record = applied.get(ref)
        if record is None or ref not in live or record.fingerprint != print_:
            continue
        current = live[ref]
        same_version = bool(record.resource_version) and record.resource_version == resource_version(current)
        if same_version or (record.live_digest and record.live_digest == live_digest(current)):
            proven.add(ref)
    return frozenset(proven)


def applied_versions(plan: Plan, prints: Mapping[ObjectRef, str], *, changes: ChangeSet | None,
                     responses: Mapping[ObjectRef, KubeObject]) -> dict[ObjectRef, AppliedVersion]:
    """The proofs to keep after a reconcile.

    `changes` is what the sync did (None: no sync ran); `responses` holds the server's
    answer to each apply it made. An object that was not found in sync, or whose apply
    failed or was skipped, gets no proof: it is compared with a dry-run next time.
    """
    done = {change.ref: change.action for change in changes.entries} if changes is not None else None
    result: dict[ObjectRef, AppliedVersion] = {}
    for obj in plan.objects:
        action = done.get(obj.ref) if done is not None else None
        if obj.action is Action.UNCHANGED and (done is None or action is ChangeAction.UNCHANGED):
            seen = obj.live
        elif action in (ChangeAction.CREATED, ChangeAction.CONFIGURED):
            seen = responses.get(obj.ref)
        else:
            continue
        if seen is not None and resource_version(seen):
            result[obj.ref] = AppliedVersion(prints[obj.ref], resource_version(seen), live_digest(seen))
    return result


def inventory(app: str, plan: Plan, changes: ChangeSet | None) -> tuple[InventoryEntry, ...]:
    """What the app has in the cluster after a reconcile: desired objects that exist (before, or
    created now) and objects of its own that Git no longer declares and were not pruned."""
    done = {change.ref: change.action for change in changes.entries} if changes is not None else {}
    entries = set()
    for obj in plan.objects:
        if obj.blocked:  # not applied: in the inventory only when it is ours already (a `hook: Skip` object)
            if obj.live is not None and owned_by(app, obj.live):
                entries.add(InventoryEntry(str(obj.desired["apiVersion"]), obj.ref))
        elif obj.live is not None or done.get(obj.ref) in (ChangeAction.CREATED, ChangeAction.CONFIGURED):
            entries.add(InventoryEntry(str(obj.desired["apiVersion"]), obj.ref))
    for candidate in plan.prune:
        if done.get(candidate.ref) is not ChangeAction.PRUNED and owned_by(app, candidate.live):
            entries.add(InventoryEntry(str(candidate.live.get("apiVersion", "")), candidate.ref))
    return tuple(sorted(entries))
