"""Is live equal to what applying the desired object would make it? Normalize, ignore, compare.

The comparison is between the live object and the server's dry-run of our apply
(the predicted live object), both normalized: fields the server owns or stamps
(managedFields, resourceVersion, generation, uid, creationTimestamp, status) never
count, Secret `stringData` is folded into `data`, and `ignore_differences` rules
remove fields from both sides. Secret values never leave this module unredacted.
"""

from __future__ import annotations

import base64
import copy
import difflib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

from agent.model import IgnoreDifference, KubeObject, ObjectRef

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


def matching_rules(ref: ObjectRef, rules: Iterable[IgnoreDifference]) -> list[IgnoreDifference]:
    return [
        rule for rule in rules
        if rule.kind == ref.kind and rule.group == ref.group
        and rule.name in ("", ref.name) and rule.namespace in ("", ref.namespace)
    ]


def remove_pointer(obj: Any, pointer: str) -> None:
    """Delete the value at a JSON pointer (RFC 6901), if it is there."""
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/")]
    node = obj
    for part in parts[:-1]:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return
    last = parts[-1]
    if isinstance(node, dict):
        node.pop(last, None)
    elif isinstance(node, list) and last.isdigit() and int(last) < len(node):
        del node[int(last)]


def remove_managed_fields(obj: Any, fields: dict[str, Any]) -> None:
    """Delete what a managedFields `fieldsV1` tree names: `f:` keys and `k:` list items."""
    for key, sub in fields.items():
        if key == ".":
            continue
        if key.startswith("f:") and isinstance(obj, dict):
            name = key[2:]
            if name not in obj:
                continue
            if sub and sub != {".": {}} and isinstance(obj[name], dict | list):
                remove_managed_fields(obj[name], sub)
            else:
                obj.pop(name)
        elif key.startswith("k:") and isinstance(obj, list):
            wanted = json.loads(key[2:])
            for item in obj:
                if isinstance(item, dict) and all(item.get(k) == v for k, v in wanted.items()):
                    remove_managed_fields(item, sub)


def _fields_of(live: KubeObject, managers: Sequence[str]) -> list[dict[str, Any]]:
    return [
        entry.get("fieldsV1") or {}
        for entry in (live.get("metadata") or {}).get("managedFields") or []
        if entry.get("manager") in managers
    ]


def comparable(obj: KubeObject, *, rules: Sequence[IgnoreDifference], live: KubeObject | None) -> KubeObject:
    """Normalized, with every matching ignore rule applied."""
    result = normalize(obj)
    for rule in rules:
        for pointer in rule.json_pointers:
            remove_pointer(result, pointer)
        if rule.managed_fields_managers and live is not None:
            for fields in _fields_of(live, rule.managed_fields_managers):
                remove_managed_fields(result, fields)
    return result


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
