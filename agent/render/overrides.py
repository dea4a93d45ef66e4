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
from dataclasses import dataclass
from typing import Any

from agent.config import KustomizeSpec

KUSTOMIZE_API = "kustomize.config.k8s.io/v1beta1"
PRESERVE = "*"  # `kustomize edit set image` keeps the existing value; over a fresh overlay: no change


@dataclass(frozen=True)
class ImageOverride:
    """One `images` entry of a kustomization."""

    name: str
    new_name: str = ""
    new_tag: str = ""
    digest: str = ""

    def as_kustomization(self) -> dict[str, str]:
        fields = {"name": self.name, "newName": self.new_name, "newTag": self.new_tag, "digest": self.digest}
        return {key: value for key, value in fields.items() if value}


def split_image(image: str) -> tuple[str, str, str]:
    """Name, tag and digest of an image reference, exactly as kustomize's `image.Split` cuts them.

    A `:` before the first `/` is a registry port, not a tag.
    """
    slash = image.find("/")
    offset = slash if slash > 0 else 0
    search = image[offset:]
    at, colon = search.find("@"), search.find(":")
    if colon < 0 and at < 0:
        return image, "", ""
    if at >= 0 and (colon < 0 or at < colon):
        return image[:offset + at], "", image[offset + at + 1:]
    if at >= 0:
        return image[:offset + colon], image[offset + colon + 1:offset + at], image[offset + at + 1:]
    return image[:offset + colon], image[offset + colon + 1:], ""


def parse_image(text: str) -> ImageOverride:
    """Parse an override as `kustomize edit set image` (which Argo CD runs) parses its argument.

    `name=newName:tag`, `name=newName@digest`, `name=newName:tag@digest`, `name=newName`,
    `name:tag`, `name@digest`, `name:tag@digest`; `*` keeps what the app sets.
    Raises ValueError for anything else.
    """
    key, separator, value = text.partition("=")
    if not separator:
        key, value = "", text
    name, tag, digest = split_image(value)
    if not separator and name == text:
        raise ValueError(f"{text!r} changes nothing: write name=newName:tag, name:tag or name@digest")
    image = ImageOverride(name=key or name, new_name=name if key else "", new_tag=tag, digest=digest)
    if not image.name:
        raise ValueError(f"{text!r} names no image to change")
    return ImageOverride(
        name=image.name,
        new_name="" if image.new_name == PRESERVE else image.new_name,
        new_tag="" if image.new_tag == PRESERVE else image.new_tag,
        digest="" if image.digest == PRESERVE else image.digest,
    )


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
