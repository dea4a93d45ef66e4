"""What every check shares: the `Health` result and strict readers of an object's fields.

Checks read live objects as plain dicts. A field of the wrong type raises `ValueError`
or `TypeError` here, which the assessor turns into Unknown with a message: a check that
cannot decide says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from agent.model import HealthStatus, KubeObject


@dataclass(frozen=True)
class Health:
    """The health of one object and, when it is not plainly healthy, why."""

    status: HealthStatus
    message: str = ""


HEALTHY = Health(HealthStatus.HEALTHY)
Check = Callable[[KubeObject], Health]


def progressing(message: str) -> Health:
    return Health(HealthStatus.PROGRESSING, message)


def degraded(message: str) -> Health:
    return Health(HealthStatus.DEGRADED, message)


def suspended(message: str) -> Health:
    return Health(HealthStatus.SUSPENDED, message)


def healthy(message: str = "") -> Health:
    return Health(HealthStatus.HEALTHY, message)


def section(obj: KubeObject, key: str) -> dict[str, Any]:
    """`obj[key]` as a mapping (`metadata`, `spec`, `status`); absent or null is empty."""
    value = obj.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{key} is {type(value).__name__}, not an object")
    return value


def integer(mapping: dict[str, Any], key: str, default: int = 0, *, where: str = "status") -> int:
    """An integer field; absent or null gives `default`, anything else that is not an int raises."""
    value = mapping.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where}.{key} is {value!r}, not an integer")
    return value


def text(mapping: dict[str, Any], key: str) -> str:
    value = mapping.get(key)
    return "" if value is None else str(value)


def conditions(obj: KubeObject) -> list[dict[str, Any]]:
    found = section(obj, "status").get("conditions") or []
    if not isinstance(found, list):
        raise TypeError("status.conditions is not a list")
    return [cond for cond in found if isinstance(cond, dict)]


def condition(obj: KubeObject, kind: str) -> dict[str, Any] | None:
    """The first condition of type `kind` in `status.conditions`, or None."""
    return next((cond for cond in conditions(obj) if cond.get("type") == kind), None)


def generation(obj: KubeObject) -> int:
    return integer(section(obj, "metadata"), "generation", where="metadata")


def observed_generation(obj: KubeObject) -> int:
    return integer(section(obj, "status"), "observedGeneration")


def join(*parts: str, separator: str = ": ") -> str:
    return separator.join(part for part in parts if part)
