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


def _options(obj: KubeObject, keys: tuple[str, ...]) -> frozenset[str]:
    annotations = _annotations(obj)
    return frozenset(option for key in keys for option in _split(annotations.get(key, "")))


def sync_options(obj: KubeObject) -> frozenset[str]:
    """`Prune=false`, `PruneLast=true`, `Replace=true`, ... from either annotation spelling."""
    return _options(obj, SYNC_OPTIONS_ANNOTATIONS)


def compare_options(obj: KubeObject) -> frozenset[str]:
    """`IgnoreExtraneous` from either annotation spelling."""
    return _options(obj, COMPARE_OPTIONS_ANNOTATIONS)


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
