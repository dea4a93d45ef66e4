"""Is live equal to what applying the desired object would make it? Normalize, ignore, compare.

The comparison is between the live object and the server's dry-run of our apply
(the predicted live object), both normalized: fields the server owns or stamps
(managedFields, resourceVersion, generation, uid, creationTimestamp, status) never
count, Secret `stringData` is folded into `data`, and `ignore_differences` rules
(agent.engine.ignore) remove fields from both sides. Secret values never leave this
module unredacted.
"""

from __future__ import annotations

import base64
import copy
import difflib
from collections.abc import Sequence

import yaml

from agent.engine.ignore import matching_rules, strip
from agent.model import IgnoreDifference, KubeObject, ObjectRef

__all__ = ["comparable", "differs", "matching_rules", "normalize", "redact_secrets", "unified_diff"]

SERVER_METADATA = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink")
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def normalize(obj: KubeObject) -> KubeObject:
    """A copy without the fields that the server owns or that never mean drift."""
    result = copy.deepcopy(obj)
    result.pop("status", None)
    meta = result.get("metadata") or {}
    for key in SERVER_METADATA:
        meta.pop(key, None)
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
        if not annotations:
            meta.pop("annotations", None)
    if result.get("kind") == "Secret" and result.get("apiVersion") == "v1":
        _fold_string_data(result)
    return result


def _fold_string_data(secret: KubeObject) -> None:
    # The API server stores stringData as base64 in data; compare in that form.
    string_data = secret.pop("stringData", None) or {}
    if string_data:
        data = secret.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()


def comparable(obj: KubeObject, *, rules: Sequence[IgnoreDifference], live: KubeObject | None) -> KubeObject:
    """Normalized, with every matching ignore rule applied."""
    return strip(normalize(obj), rules, live=live)


def differs(predicted: KubeObject, live: KubeObject, rules: Sequence[IgnoreDifference]) -> bool:
    ref = ObjectRef.of(live)
    matched = matching_rules(ref, rules)
    return comparable(predicted, rules=matched, live=live) != comparable(live, rules=matched, live=live)


def redact_secrets(*objects: KubeObject | None) -> list[KubeObject | None]:
    """Copies with Secret values replaced by placeholders; equal values share one placeholder.

    The placeholders show that a value changed without revealing anything about it.
    """
    placeholders: dict[str, str] = {}
    result: list[KubeObject | None] = []
    for obj in objects:
        if obj is None or obj.get("kind") != "Secret":
            result.append(obj)
            continue
        copied = copy.deepcopy(obj)
        for field in ("data", "stringData"):
            values = copied.get(field)
            if isinstance(values, dict):
                for key, value in values.items():
                    token = placeholders.setdefault(str(value), f"<redacted value {len(placeholders) + 1}>")
                    values[key] = token
        annotations = (copied.get("metadata") or {}).get("annotations") or {}
        annotations.pop(LAST_APPLIED, None)
        result.append(copied)
    return result


def unified_diff(ref: ObjectRef, live: KubeObject | None, predicted: KubeObject | None,
                 rules: Sequence[IgnoreDifference] = ()) -> str:
    """A unified YAML diff from live to predicted, normalized and with Secret values redacted."""
    matched = matching_rules(ref, rules)
    sides = [None if obj is None else comparable(obj, rules=matched, live=live) for obj in (live, predicted)]
    before, after = redact_secrets(*sides)
    lines = [
        difflib.unified_diff(
            _yaml_lines(before), _yaml_lines(after), fromfile=f"live/{ref}", tofile=f"desired/{ref}", lineterm=""
        )
    ]
    return "\n".join(line for chunk in lines for line in chunk)


def _yaml_lines(obj: KubeObject | None) -> list[str]:
    return [] if obj is None else yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines()
