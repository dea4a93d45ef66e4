"""`ignore_differences`: which rules match an object, and the fields they name. Pure.

A rule names fields by JSON pointer, by jq path expression (run as `del(<expression>)`, as
Argo CD runs them, with the `jq` library), or as every field a field manager owns. Its
`group` and `kind` are globs. The comparison removes those fields from both sides; with
`RespectIgnoreDifferences=true` a sync also leaves them as they are live.

A jq expression that fails on an object (`.spec.initContainers[]` where there are none)
ignores nothing there, as in Argo CD.
"""

from __future__ import annotations

import copy
import fnmatch
import functools
import json
from collections.abc import Iterable, Sequence
from typing import Any

import jq

from agent.model import IgnoreDifference, KubeObject, ObjectRef

Path = tuple[str | int, ...]


def matching_rules(ref: ObjectRef, rules: Iterable[IgnoreDifference]) -> list[IgnoreDifference]:
    return [
        rule for rule in rules
        if fnmatch.fnmatchcase(ref.kind, rule.kind) and fnmatch.fnmatchcase(ref.group, rule.group)
        and rule.name in ("", ref.name) and rule.namespace in ("", ref.namespace)
    ]


# Compiled programs, by expression: every comparison of a matching object runs them, and compiling
# costs far more than running. Bounded; the expressions come from the configuration.
@functools.lru_cache(maxsize=512)
def _deletion(expression: str) -> Any:
    return jq.compile(f"del({expression})")


@functools.lru_cache(maxsize=512)
def _paths(expression: str) -> Any:
    return jq.compile(f"[path({expression})]")


def jq_problem(expression: str) -> str | None:
    """Why the jq path expression cannot be used (jq's own message), or None when it compiles."""
    try:
        _deletion(expression)
    except ValueError as exc:
        return f"{expression!r} is not a jq path expression: " + " ".join(str(exc).split())
    return None


def remove_jq(obj: KubeObject, expression: str) -> KubeObject:
    """The object without what the jq path expression selects (unchanged when it fails on it)."""
    try:
        result = _deletion(expression).input_value(obj).first()
    except ValueError:
        return obj
    return result if isinstance(result, dict) else obj


def jq_paths(obj: KubeObject, expression: str) -> list[Path]:
    """The paths a jq path expression selects in the object (none when it fails on it)."""
    try:
        found = _paths(expression).input_value(obj).first()
    except ValueError:
        return []
    return [tuple(path) for path in found or [] if isinstance(path, list)]


def pointer_path(pointer: str) -> Path:
    """An RFC 6901 JSON pointer as path parts (list indices as text: `lookup` reads them)."""
    return tuple(p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/"))


def lookup(obj: Any, path: Path) -> tuple[bool, Any]:
    """(found, value) at `path`."""
    node = obj
    for part in path:
        if isinstance(node, dict) and str(part) in node:
            node = node[str(part)]
        elif isinstance(node, list) and str(part).isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def remove_path(obj: Any, path: Path) -> None:
    """Delete the value at `path`, if it is there."""
    found, parent = lookup(obj, path[:-1])
    if not found or not path:
        return
    last = path[-1]
    if isinstance(parent, dict):
        parent.pop(str(last), None)
    elif isinstance(parent, list) and str(last).isdigit() and int(last) < len(parent):
        del parent[int(last)]


def set_path(obj: Any, path: Path, value: Any) -> bool:
    """Set the value at `path` when its parent exists; False when it does not."""
    found, parent = lookup(obj, path[:-1])
    if not found or not path:
        return False
    last = path[-1]
    if isinstance(parent, dict):
        parent[str(last)] = value
        return True
    if isinstance(parent, list) and str(last).isdigit() and int(last) < len(parent):
        parent[int(last)] = value
        return True
    return False


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


def managed_fields(live: KubeObject, managers: Sequence[str]) -> list[dict[str, Any]]:
    return [
        entry.get("fieldsV1") or {}
        for entry in (live.get("metadata") or {}).get("managedFields") or []
        if entry.get("manager") in managers
    ]


def strip(obj: KubeObject, rules: Sequence[IgnoreDifference], *, live: KubeObject | None) -> KubeObject:
    """`obj` (a copy the caller owns) without every field the rules name."""
    result = obj
    for rule in rules:
        for pointer in rule.json_pointers:
            remove_path(result, pointer_path(pointer))
        for expression in rule.jq_path_expressions:
            result = remove_jq(result, expression)
        if rule.managed_fields_managers and live is not None:
            for fields in managed_fields(live, rule.managed_fields_managers):
                remove_managed_fields(result, fields)
    return result


def respect_ignored(desired: KubeObject, live: KubeObject, rules: Sequence[IgnoreDifference]) -> KubeObject:
    """`RespectIgnoreDifferences=true`: the desired object with every ignored field as it is live, so
    applying it leaves them alone. A field live does not have is left out; one whose parent
    the desired object lacks keeps what the desired object says. Managed-fields rules leave
    out what those managers own, so the apply does not touch it."""
    matched = matching_rules(ObjectRef.of(desired), rules)
    if not matched:
        return desired
    result = copy.deepcopy(desired)
    for rule in matched:
        paths = [pointer_path(pointer) for pointer in rule.json_pointers]
        for expression in rule.jq_path_expressions:
            paths += jq_paths(live, expression) + jq_paths(result, expression)
        for path in paths:
            found, value = lookup(live, path)
            if not found:
                remove_path(result, path)
            else:
                set_path(result, path, copy.deepcopy(value))
        if rule.managed_fields_managers:
            for fields in managed_fields(live, rule.managed_fields_managers):
                remove_managed_fields(result, fields)
    return result
