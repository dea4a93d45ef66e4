"""YAML streams → Kubernetes objects, safely, each remembering its file and document index.

PyYAML's safe loader (the C one when libyaml is present) builds no arbitrary objects.
It does not protect against a "billion laughs" document, though: an alias is shared,
not copied, so such a document loads in microseconds and explodes later, when
something walks it (a deep copy, JSON for the API, a diff). So every document is
measured as a node graph before it is constructed: its length in the stream, and its
size with every alias expanded, computed with memoization (linear in distinct nodes).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from agent.errors import RenderError
from agent.model import KubeObject, Manifest

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class RenderLimits:
    """Caps that make hostile or broken input fail fast instead of eating memory."""

    max_document_bytes: int = 4 * 1024 * 1024  # one YAML document, as written
    max_expanded_size: int = 16 * 1024 * 1024  # scalar characters plus one per node, every alias expanded
    max_objects: int = 10_000  # objects one render may produce
    max_output_bytes: int = 256 * 1024 * 1024  # what kustomize may print


def parse_documents(source: str, content: bytes, limits: RenderLimits) -> list[Any]:
    """Every document of a YAML stream (None for an empty one), each checked against the limits."""
    loader = _Loader(content)
    documents: list[Any] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            check_node(source, len(documents), node, limits)
            documents.append(loader.construct_document(node))
    except yaml.MarkedYAMLError as exc:
        raise RenderError(_yaml_problem(source, exc)) from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"{source}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    return documents


def check_stream(source: str, content: bytes, limits: RenderLimits) -> None:
    """Refuse a YAML bomb before another program (kustomize) reads the file.

    Syntax errors are left to that program: its YAML dialect is what counts there.
    """
    loader = _Loader(content)
    index = 0
    try:
        while loader.check_node():
            check_node(source, index, loader.get_node(), limits)
            index += 1
    except yaml.YAMLError:
        return
    finally:
        loader.dispose()


def parse_stream(source: str, content: bytes, limits: RenderLimits | None = None) -> list[Manifest]:
    """Parse one YAML stream (a file, or kustomize's output) into objects; `kind: List` is flattened."""
    manifests: list[Manifest] = []
    for index, document in enumerate(parse_documents(source, content, limits or RenderLimits())):
        if document is None:
            continue
        manifests.extend(Manifest(obj=obj, source=source, index=index) for obj in _flatten(source, index, document))
    return manifests


def _yaml_problem(source: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" line {mark.line + 1} column {mark.column + 1}:" if mark else ""
    return f"{source}:{where} invalid YAML: {exc.problem or exc.context}"


def check_node(source: str, index: int, node: yaml.Node, limits: RenderLimits) -> None:
    line = node.start_mark.line + 1
    where = f"{source}: document {index + 1} (line {line})"
    length = node.end_mark.index - node.start_mark.index
    if length > limits.max_document_bytes:
        raise RenderError(f"{where}: is {length} bytes long, over the limit of {limits.max_document_bytes}")
    expanded_size(node, limits.max_expanded_size, where)


def expanded_size(root: yaml.Node, limit: int, where: str) -> int:
    """Size of the document once every alias is expanded; RenderError past `limit` or on a cycle.

    Iterative post-order walk with memoization by node identity: an alias is the same
    node object as its anchor, so each distinct node is visited once however often it
    is referred to, and a billion laughs costs a few dozen steps to measure.
    """
    sizes: dict[int, int] = {}
    expanding: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if children_done:
            expanding.discard(key)
            total = 1 + sum(sizes[id(child)] for child in _children(node))
            if isinstance(node, yaml.ScalarNode):
                total += len(node.value)
            if total > limit:
                raise RenderError(
                    f"{where}: expands to more than {limit} characters through YAML aliases (a YAML bomb?)"
                )
            sizes[key] = total
            continue
        if key in sizes:
            continue
        if key in expanding:
            raise RenderError(f"{where}: a YAML alias refers to the node that contains it")
        expanding.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)
    return sizes[id(root)]


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        yield from node.value
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value


def _flatten(source: str, index: int, document: Any) -> Iterator[KubeObject]:
    if not isinstance(document, dict):
        raise RenderError(f"{source}: document {index + 1} is a {type(document).__name__}, not an object")
    kind = document.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and isinstance(document.get("items"), list):
        for item in document["items"]:
            yield from _flatten(source, index, item)
        return
    _check_object(source, index, document)
    yield document


def _check_object(source: str, index: int, obj: KubeObject) -> None:
    where = f"{source}: document {index + 1}"
    for key in ("apiVersion", "kind"):
        if not isinstance(obj.get(key), str) or not obj[key]:
            raise RenderError(f"{where}: missing {key}")
    meta = obj.get("metadata")
    # generateName is for hooks (a fresh name each sync); agent.engine.desired refuses it elsewhere.
    named = isinstance(meta, dict) and any(isinstance(meta.get(key), str) and meta[key]
                                           for key in ("name", "generateName"))
    if not named:
        raise RenderError(f"{where}: {obj['kind']} has no metadata.name")
