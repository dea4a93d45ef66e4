"""Turn rendered manifests into what a sync works with: the objects we apply (placed, with the
ownership label and tracking id) and the hooks, split out before anything is compared."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from agent import APP_LABEL, TRACKING_ANNOTATION
from agent.engine.hooks import helm_hook_warning, hook_types, hooks_of, is_skipped
from agent.engine.options import sync_wave
from agent.errors import RenderError
from agent.model import Condition, ConditionType, Hook, KubeObject, Manifest, ObjectRef

# Whether (apiVersion, kind) is namespaced; None when the API server does not know the kind.
NamespacedLookup = Callable[[str, str], bool | None]


@dataclass(frozen=True)
class DesiredState:
    """An app's render, split: `objects` are its desired state; `hooks` run in sync phases."""

    objects: list[KubeObject] = field(default_factory=list)
    hooks: list[Hook] = field(default_factory=list)
    warnings: list[Condition] = field(default_factory=list)


def tracking_id(app: str, ref: ObjectRef) -> str:
    return f"{app}:{ref.group}/{ref.kind}:{ref.namespace}/{ref.name}"


def tracking_owner(live: KubeObject) -> str:
    """The app a live object's tracking id names ('' when it has none)."""
    annotation = str((((live.get("metadata") or {}).get("annotations")) or {}).get(TRACKING_ANNOTATION) or "")
    return annotation.partition(":")[0]


def desired_objects(
    app: str, manifests: Sequence[Manifest], *, namespace: str, is_namespaced: NamespacedLookup
) -> list[KubeObject]:
    """The objects to apply (hooks left out); see `desired_state`."""
    return desired_state(app, manifests, namespace=namespace, is_namespaced=is_namespaced).objects


def desired_state(
    app: str, manifests: Sequence[Manifest], *, namespace: str, is_namespaced: NamespacedLookup
) -> DesiredState:
    """Copies of the manifests, placed; resources marked as ours, hooks split out. A duplicate is an error."""
    state = DesiredState()
    seen: dict[tuple[object, ...], str] = {}
    for manifest in manifests:
        obj = _placed(manifest, namespace, is_namespaced)
        types = hook_types(obj)
        if types and not is_skipped(types):
            hooks = hooks_of(obj, wave=sync_wave(obj), origin=manifest.origin)
            for hook in hooks:
                _unique(seen, (hook.phase, hook.ref), f"{hook.ref} ({hook.phase.value} hook)", manifest.origin)
            state.hooks.extend(hooks)
            continue
        ref = ObjectRef.of(obj)
        if not ref.name:
            raise RenderError(f"{manifest.origin}: {ref.kind} has no metadata.name (generateName is for hooks only)")
        _unique(seen, (ref,), str(ref), manifest.origin)
        warning = helm_hook_warning(obj)
        if warning:
            state.warnings.append(Condition(ConditionType.INVALID_SPEC_ERROR, warning))
        meta = obj["metadata"]
        meta["labels"] = {**(meta.get("labels") or {}), APP_LABEL: app}
        meta["annotations"] = {**(meta.get("annotations") or {}), TRACKING_ANNOTATION: tracking_id(app, ref)}
        state.objects.append(obj)
    return state


def _placed(manifest: Manifest, namespace: str, is_namespaced: NamespacedLookup) -> KubeObject:
    # Only metadata is changed here; the rest is shared with the (immutable) render cache.
    obj = {**manifest.obj, "metadata": dict(manifest.obj["metadata"])}
    meta = obj["metadata"]
    namespaced = is_namespaced(obj["apiVersion"], obj["kind"])
    if namespaced is None:
        raise RenderError(f"{manifest.origin}: the cluster does not know {obj['kind']} in {obj['apiVersion']}")
    if namespaced:
        meta.setdefault("namespace", namespace)
        if not meta["namespace"]:
            meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    return obj


def _unique(seen: dict[tuple[object, ...], str], key: tuple[object, ...], what: str, origin: str) -> None:
    if key in seen:
        raise RenderError(f"{what}: declared twice, in {seen[key]} and {origin}")
    seen[key] = origin
