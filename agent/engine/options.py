"""Per-object annotations that steer a sync, in our spelling and Argo CD's."""

from __future__ import annotations

from agent.errors import RenderError
from agent.model import KubeObject, ObjectRef

SYNC_OPTIONS_ANNOTATIONS = ("gitops-agent.io/sync-options", "argocd.argoproj.io/sync-options")
SYNC_WAVE_ANNOTATIONS = ("gitops-agent.io/sync-wave", "argocd.argoproj.io/sync-wave")
COMPARE_OPTIONS_ANNOTATIONS = ("gitops-agent.io/compare-options", "argocd.argoproj.io/compare-options")


def _annotations(obj: KubeObject) -> dict[str, str]:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _split(value: str) -> set[str]:
    return {part.strip() for part in value.split(",") if part.strip()}


def sync_options(obj: KubeObject) -> frozenset[str]:
    """`Prune=false`, `PruneLast=true`, `Replace=true`, ... from either annotation spelling."""
    annotations = _annotations(obj)
    found: set[str] = set()
    for key in SYNC_OPTIONS_ANNOTATIONS:
        found |= _split(annotations.get(key, ""))
    return frozenset(found)


def compare_options(obj: KubeObject) -> frozenset[str]:
    annotations = _annotations(obj)
    found: set[str] = set()
    for key in COMPARE_OPTIONS_ANNOTATIONS:
        found |= _split(annotations.get(key, ""))
    return frozenset(found)


def sync_wave(obj: KubeObject) -> int:
    """The object's sync wave (default 0); a value that is not an integer is an error."""
    annotations = _annotations(obj)
    for key in SYNC_WAVE_ANNOTATIONS:
        if key in annotations:
            try:
                return int(str(annotations[key]).strip())
            except ValueError:
                raise RenderError(f"{key} {annotations[key]!r} is not an integer", ref=ObjectRef.of(obj)) from None
    return 0
