"""App-level overrides (`[applications.kustomize]`) as a generated kustomization.

Argo CD applies `spec.source.kustomize` by running `kustomize edit set ...` on the
app's own kustomization.yaml in its checkout. We never edit the checkout: the app's
path becomes the one resource of a generated overlay in a temporary directory, and
the overrides are that overlay's fields. So they act on what the path renders —
`name_prefix` prepends to the rendered names, `images` match the image names as
rendered, `replicas` match a name the object had at any point — which is what
Argo CD gives whenever the app's kustomization does not set the same field itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from agent.model import KustomizeSpec, parse_image

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"


def overlay_kustomization(spec: KustomizeSpec, resources: Sequence[str]) -> dict[str, Any]:
    """The kustomization that applies `spec` over `resources` (paths relative to it)."""
    doc: dict[str, Any] = {"apiVersion": KUSTOMIZE_API, "kind": "Kustomization", "resources": list(resources)}
    if spec.namespace:
        doc["namespace"] = spec.namespace
    if spec.name_prefix:
        doc["namePrefix"] = spec.name_prefix
    if spec.name_suffix:
        doc["nameSuffix"] = spec.name_suffix
    if spec.common_labels:
        # `labels` with includeSelectors is what `commonLabels` (deprecated in kustomize v5) does.
        doc["labels"] = [{"pairs": dict(spec.common_labels), "includeSelectors": not spec.label_without_selector}]
    if spec.common_annotations:
        doc["commonAnnotations"] = dict(spec.common_annotations)
    if spec.images:
        # Like `kustomize edit set image`: one entry per image name (the last wins), sorted by name.
        images = {image.name: image for image in map(parse_image, spec.images)}
        doc["images"] = [images[name].as_kustomization() for name in sorted(images)]
    if spec.replicas:
        doc["replicas"] = [{"name": name, "count": count} for name, count in spec.replicas]
    return doc
