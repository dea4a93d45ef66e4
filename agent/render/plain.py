"""Plain YAML and JSON directories: every `*.yaml`, `*.yml` and `*.json` file, multi-document.

Parsing uses PyYAML's safe loader (the C one when present): no arbitrary tags.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from agent.errors import RenderError
from agent.model import KubeObject

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # the C loader when libyaml is present

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class Manifest:
    """One object and where it came from, for messages."""

    obj: KubeObject
    source: str
    index: int

    @property
    def origin(self) -> str:
        return f"{self.source} (document {self.index + 1})"


def load_manifests(files: Mapping[str, bytes]) -> list[Manifest]:
    """Parse every manifest file, in path order, into objects."""
    manifests: list[Manifest] = []
    for path in sorted(files):
        if path.endswith(MANIFEST_SUFFIXES):
            manifests.extend(_parse_file(path, files[path]))
    return manifests


def parse_stream(source: str, content: bytes) -> list[Manifest]:
    """Parse one YAML stream (a file, or kustomize's output) into objects."""
    return list(_parse_file(source, content))


def _parse_file(path: str, content: bytes) -> Iterator[Manifest]:
    try:
        documents = list(yaml.load_all(content, Loader=_Loader))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1} column {mark.column + 1}" if mark else ""
        raise RenderError(f"{path}:{where}: invalid YAML: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"{path}: invalid YAML: {exc}") from exc
    for index, document in enumerate(documents):
        if document is None:
            continue
        for obj in _flatten(path, index, document):
            yield Manifest(obj=obj, source=path, index=index)


def _flatten(path: str, index: int, document: Any) -> Iterator[KubeObject]:
    if not isinstance(document, dict):
        raise RenderError(f"{path}: document {index + 1} is a {type(document).__name__}, not an object")
    kind = document.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(document.get("items"), list):
        for item in document["items"]:
            yield from _flatten(path, index, item)
        return
    _check_object(path, index, document)
    yield document


def _check_object(path: str, index: int, obj: KubeObject) -> None:
    where = f"{path}: document {index + 1}"
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise RenderError(f"{where}: missing {key}")
    meta = obj.get("metadata")
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str) or not meta["name"]:
        raise RenderError(f"{where}: {obj['kind']} has no metadata.name")
