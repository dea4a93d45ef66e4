"""Recorded live objects for the health tests (tests/unit/testdata/health), and ways to bend them."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

TESTDATA = Path(__file__).parent / "testdata" / "health"


def recorded(name: str) -> dict[str, Any]:
    """A fresh copy of one recorded object, safe to modify."""
    return copy.deepcopy(_load(name))


_CACHE: dict[str, dict[str, Any]] = {}


def _load(name: str) -> dict[str, Any]:
    if name not in _CACHE:
        _CACHE[name] = yaml.safe_load((TESTDATA / f"{name}.yaml").read_text())
    return _CACHE[name]


def condition(type_: str, status: str, reason: str = "", message: str = "", **extra: Any) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, **extra}
