"""Parameter files (a git files generator's JSON or YAML, a list generator's `elementsYaml`) read
into plain JSON-like values, as Argo CD's YAML → JSON decoding leaves them: string keys, dates as
strings. Parsed safely, with a cap on the values a file may expand to (aliases can multiply them)."""

from __future__ import annotations

import datetime
from typing import Any

import yaml

MAX_VALUES = 100_000


def load_params_file(content: bytes, *, list_only: bool = False) -> list[dict[str, Any]]:
    """One parameter set per object: a file holds one object or a list of them (an empty file is one
    empty object). ValueError names the problem, never the contents."""
    try:
        doc = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"not valid JSON or YAML{where}") from None
    budget = [MAX_VALUES]
    value = _plain(doc, budget)
    if value is None and not list_only:
        return [{}]
    if isinstance(value, dict) and not list_only:
        return [value]
    if isinstance(value, list) and all(isinstance(item, dict) for item in value):
        return value
    expected = "a list of objects" if list_only else "an object or a list of objects"
    raise ValueError(f"must hold {expected}")


def _plain(value: Any, budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"expands to more than {MAX_VALUES} values")
    if isinstance(value, dict):
        return {_key(key): _plain(item, budget) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item, budget) for item in value]
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if value is None or isinstance(value, str | bool | int | float):
        return value
    raise ValueError(f"holds a {type(value).__name__}, which JSON cannot")


def _key(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)
