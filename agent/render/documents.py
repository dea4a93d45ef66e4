"""YAML streams → Kubernetes objects, safely, each remembering its file and document index.

PyYAML's safe loader (the C one when libyaml is present) builds no arbitrary objects.
It does not protect against a "billion laughs" document, though: an alias is shared,
not copied, so such a document loads in microseconds and explodes later, when
something walks it (a deep copy, JSON for the API, a diff). So every document is
measured as a node graph before it is constructed: its length in the stream, and its
size with every alias expanded, computed with memoization (linear in distinct nodes).

Memory is the other hazard: a composed node costs about 360 bytes and its construction
about 90 more, so a 4 MiB document of tiny scalars (two million nodes) took gigabytes.
Every stream is therefore first read as events, which costs no memory, counting its
nodes against the render's budget (`RenderBudget`); only then is it composed, one
document at a time. Documents without aliases need no graph walk: their expanded size
is their node count plus their scalars' length, known from the events.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from agent.config import RenderSettings
from agent.errors import RenderError
from agent.model import KubeObject, Manifest

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NODE_EVENTS = (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent, yaml.AliasEvent)
_SPEND_EVERY = 4096  # nodes counted between two checks of the budget


@dataclass(frozen=True)
class RenderLimits:
    """Caps that make hostile or broken input fail fast instead of eating memory."""

    max_document_bytes: int = 4 * 1024 * 1024  # one YAML document, as written
    max_expanded_size: int = 16 * 1024 * 1024  # scalar characters plus one per node, every alias expanded
    max_objects: int = 10_000  # objects one render may produce
    # One render's budget (`[agent]` keys of the same names, see RenderSettings).
    max_render_bytes: int = RenderSettings.max_render_bytes
    max_render_nodes: int = RenderSettings.max_render_nodes


class RenderBudget:
    """What one render has read so far, against `max_render_bytes` and `max_render_nodes`.

    Used by one render at a time (from the event loop or its worker thread, never both at once).
    """

    def __init__(self, limits: RenderLimits) -> None:
        self.limits = limits
        self.bytes = 0
        self.nodes = 0

    @property
    def bytes_left(self) -> int:
        return max(0, self.limits.max_render_bytes - self.bytes)

    def spend_bytes(self, where: str, amount: int) -> None:
        self.bytes += amount
        if self.bytes > self.limits.max_render_bytes:
            raise RenderError(f"{where}: the render holds more than {self.limits.max_render_bytes} bytes of files "
                              "(max_render_bytes)")

    def spend_nodes(self, where: str, amount: int) -> None:
        self.nodes += amount
        if self.nodes > self.limits.max_render_nodes:
            raise RenderError(f"{where}: the render parses more than {self.limits.max_render_nodes} YAML nodes "
                              "(max_render_nodes)")


def parse_documents(source: str, content: bytes, limits: RenderLimits, budget: RenderBudget | None = None) -> list[Any]:
    """Every document of a YAML stream (None for an empty one), each checked against the limits.

    Its nodes are spent from `budget` (a budget of its own when None) before any is composed.
    """
    documents: list[Any] = []
    try:
        with_aliases = measure(source, content, limits, budget or RenderBudget(limits))
        loader = _Loader(content)
        try:
            while loader.check_node():
                node = loader.get_node()
                if with_aliases[len(documents)]:
                    expanded_size(node, limits.max_expanded_size, _where(source, len(documents), node))
                documents.append(loader.construct_document(node))
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        raise RenderError(_yaml_problem(source, exc)) from exc
    except yaml.YAMLError as exc:
        raise RenderError(f"{source}: invalid YAML: {exc}") from exc
    return documents


def check_stream(source: str, content: bytes, limits: RenderLimits, budget: RenderBudget | None = None) -> None:
    """Refuse a YAML bomb, or more nodes than `budget` has left, before another program (kustomize)
    reads the file.

    Syntax errors are left to that program: its YAML dialect is what counts there.
    """
    try:
        with_aliases = measure(source, content, limits, budget or RenderBudget(limits))
        if not any(with_aliases):
            return
        loader = _Loader(content)
        try:
            index = 0
            while loader.check_node():
                node = loader.get_node()
                if with_aliases[index]:
                    expanded_size(node, limits.max_expanded_size, _where(source, index, node))
                index += 1
        finally:
            loader.dispose()
    except yaml.YAMLError:
        return


def measure(source: str, content: bytes, limits: RenderLimits, budget: RenderBudget) -> list[bool]:
    """Read the stream as events (no node is kept): spend its nodes from `budget`, check each
    document's length; per document, whether it uses aliases (only those need a graph walk)."""
    loader = _Loader(content)
    with_aliases: list[bool] = []
    document = _Document(source, 0)
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, yaml.DocumentStartEvent):
                document = _Document(source, len(with_aliases), line=_mark(event.end_mark)[1])
                with_aliases.append(False)
            elif isinstance(event, yaml.DocumentEndEvent):
                document.done(limits, budget)
            elif isinstance(event, _NODE_EVENTS):
                document.node(event, budget)
                with_aliases[-1] = with_aliases[-1] or isinstance(event, yaml.AliasEvent)
            elif isinstance(event, yaml.CollectionEndEvent):
                document.last = _mark(event.end_mark)[0]
    finally:
        loader.dispose()
    return with_aliases


@dataclass
class _Document:
    """One document as `measure` counts it: nodes, and where its root begins and ends."""

    source: str
    index: int
    line: int = 0
    nodes: int = 0
    first: int = -1
    last: int = -1

    @property
    def where(self) -> str:
        return f"{self.source}: document {self.index + 1} (line {self.line + 1})"

    def node(self, event: yaml.Event, budget: RenderBudget) -> None:
        if self.first < 0:
            self.first, self.line = _mark(event.start_mark)
        self.last = _mark(event.end_mark)[0]
        self.nodes += 1
        if self.nodes % _SPEND_EVERY == 0:  # a huge document stops early, not after all of it was read
            budget.spend_nodes(self.where, _SPEND_EVERY)

    def done(self, limits: RenderLimits, budget: RenderBudget) -> None:
        length = self.last - self.first
        if length > limits.max_document_bytes:
            raise RenderError(f"{self.where}: is {length} bytes long, over the limit of {limits.max_document_bytes}")
        budget.spend_nodes(self.where, self.nodes % _SPEND_EVERY)


def _mark(mark: Any) -> tuple[int, int]:
    """(index, line) of a mark; the C parser always sets one."""
    return (mark.index, mark.line) if mark is not None else (0, 0)


def parse_stream(source: str, content: bytes, limits: RenderLimits | None = None,
                 budget: RenderBudget | None = None) -> list[Manifest]:
    """Parse one YAML stream (a file, or kustomize's output) into objects; `kind: List` is flattened."""
    manifests: list[Manifest] = []
    limits = budget.limits if budget is not None else limits or RenderLimits()
    for index, document in enumerate(parse_documents(source, content, limits, budget)):
        if document is None:
            continue
        manifests.extend(Manifest(obj=obj, source=source, index=index) for obj in _flatten(source, index, document))
    return manifests


def _yaml_problem(source: str, exc: yaml.MarkedYAMLError) -> str:
    mark = exc.problem_mark or exc.context_mark
    where = f" line {mark.line + 1} column {mark.column + 1}:" if mark else ""
    return f"{source}:{where} invalid YAML: {exc.problem or exc.context}"


def _where(source: str, index: int, node: yaml.Node) -> str:
    return f"{source}: document {index + 1} (line {node.start_mark.line + 1})"


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
    if not isinstance(meta, dict) or all(meta.get(key) in (None, "") for key in ("name", "generateName")):
        raise RenderError(f"{where}: {obj['kind']} has no metadata.name")
    problem = metadata_problem(meta)
    if problem:
        named = f" {meta['name']!r}" if isinstance(meta.get("name"), str) else ""
        raise RenderError(f"{where}: {obj['kind']}{named}: {problem}")


def metadata_problem(meta: dict[str, Any]) -> str:
    """What is wrong with the types in an object's metadata ("" when nothing is).

    Everything downstream (placement, ownership marks, the plan, the API server) takes
    name and namespace for strings and labels and annotations for maps of strings; a
    careless `labels: [x]` or `version: 1` must be a render error naming the field, not a
    TypeError deep in a reconcile.
    """
    for key in ("name", "namespace", "generateName"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], str):
            return f"metadata.{key} must be a string, not {_kind_of(meta[key])}"
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            return f"metadata.{key} must be a map of strings, not {_kind_of(value)}"
        for name, text in value.items():
            if not isinstance(name, str):
                return f"metadata.{key}: the key {name!r} must be a string, not {_kind_of(name)}"
            if not isinstance(text, str):
                return f"metadata.{key}.{name} must be a string, not {_kind_of(text)}"
    return ""


def _kind_of(value: Any) -> str:
    """A YAML reader's name for a value's type."""
    names = {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "a map", str: "a string"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)
