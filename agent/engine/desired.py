"""Turn rendered manifests into the objects we apply: namespace, ownership label and tracking id."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from agent import APP_LABEL, TRACKING_ANNOTATION
from agent.errors import RenderError
from agent.model import KubeObject, Manifest, ObjectRef

# Whether (apiVersion, kind) is namespaced; None when the API server does not know the kind.
NamespacedLookup = Callable[[str, str], bool | None]


def tracking_id(app: str, ref: ObjectRef) -> str:
    return f"{app}:{ref.group}/{ref.kind}:{ref.namespace}/{ref.name}"


def desired_objects(
    app: str, manifests: Sequence[Manifest], *, namespace: str, is_namespaced: NamespacedLookup
) -> list[KubeObject]:
    """Copies of the manifests, placed and marked as ours; duplicates are an error."""
    result: list[KubeObject] = []
    seen: dict[ObjectRef, str] = {}
    for manifest in manifests:
        # Only metadata is changed here; the rest is shared with the (immutable) render cache.
        obj = {**manifest.obj, "metadata": dict(manifest.obj["metadata"])}
        meta = obj["metadata"]
        namespaced = is_namespaced(obj["apiVersion"], obj["kind"])
        if namespaced is None:
            raise RenderError(
                f"{manifest.origin}: the cluster does not know {obj['kind']} in {obj['apiVersion']}"
            )
        if namespaced:
            meta.setdefault("namespace", namespace)
            if not meta["namespace"]:
                meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        ref = ObjectRef.of(obj)
        if ref in seen:
            raise RenderError(f"{ref}: declared twice, in {seen[ref]} and {manifest.origin}")
        seen[ref] = manifest.origin
        meta["labels"] = {**(meta.get("labels") or {}), APP_LABEL: app}
        meta["annotations"] = {**(meta.get("annotations") or {}), TRACKING_ANNOTATION: tracking_id(app, ref)}
        result.append(obj)
    return result
