"""ApplicationSet generators as typed values: `list`, `git` (directories or files), `matrix`, `merge`.

Parsing checks what can be checked before any repository is read; `agent.argocd.params` turns
a generator into parameter sets. Other generators (clusters, SCM providers, pull requests,
cluster decision resources, plugins) and post selectors are refused, naming the field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.argocd.fields import Fields, Subject

# Generators that may hold children, and how deep: Argo CD lets a matrix or merge hold one more
# matrix or merge, whose children must be plain generators.
MAX_NESTING = 2
_REFUSED = {
    "clusters": "(the cluster generator) is not supported yet",
    "clusterDecisionResource": "is not supported",
    "scmProvider": "(the SCM provider generator) is not supported",
    "pullRequest": "(the pull request generator) is not supported",
    "plugin": "(the plugin generator) is not supported",
}
_KINDS = ("list", "git", "matrix", "merge", *_REFUSED)


@dataclass(frozen=True)
class PathItem:
    """One `directories` or `files` entry of a git generator."""

    path: str
    exclude: bool = False


@dataclass(frozen=True)
class ListGenerator:
    elements: tuple[Mapping[str, Any], ...] = ()
    elements_yaml: str = ""
    template: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class GitGenerator:
    repo: str
    revision: str = "HEAD"
    directories: tuple[PathItem, ...] = ()
    files: tuple[PathItem, ...] = ()
    path_param_prefix: str = ""
    values: Mapping[str, str] = field(default_factory=dict)
    template: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""


@dataclass(frozen=True)
class MatrixGenerator:
    """Every combination of its two children's parameter sets; the second child is read once per
    parameter set of the first, with that set's values filled into its own fields."""

    first: Generator
    second_raw: Mapping[str, Any]  # the second child as written, interpolated per set of the first
    second_where: str  # its field path, for messages
    subject: Subject  # the ApplicationSet, for messages about the interpolated second child
    template: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""
    depth: int = 0


@dataclass(frozen=True)
class MergeGenerator:
    """The first child's parameter sets, each overridden by the later children's sets with equal
    values for every merge key."""

    children: tuple[Generator, ...]
    merge_keys: tuple[str, ...]
    template: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""


Generator = ListGenerator | GitGenerator | MatrixGenerator | MergeGenerator


def parse_generator(fields: Fields, *, depth: int = 0) -> Generator:
    """One entry of `spec.generators` (depth 0) or of a matrix or merge's `generators`."""
    present = [key for key in _KINDS if fields.has(key)]
    fields.refuse(["selector"], "(post selectors) is not supported yet")
    if len(present) != 1:
        raise fields.invalid_here(f"give exactly one generator ({', '.join(_KINDS[:4])}), "
                                  f"not {', '.join(present) or 'none'}")
    kind = present[0]
    if kind in _REFUSED:
        raise fields.unsupported(kind, f"{fields.field(kind)} {_REFUSED[kind]}")
    body = fields.sub(kind)
    if body is None:
        raise fields.invalid(kind, "must be a map")
    fields.finish()
    template = _template(body, depth=depth)
    if kind == "list":
        generator: Generator = _list(body, template)
    elif kind == "git":
        generator = _git(body, template)
    elif depth >= MAX_NESTING:
        raise body.invalid_here("a matrix or merge may hold one more matrix or merge, not deeper")
    elif kind == "matrix":
        generator = _matrix(body, template, depth=depth)
    else:
        generator = _merge(body, template, depth=depth)
    body.finish()
    return generator


def _template(body: Fields, *, depth: int) -> Mapping[str, Any]:
    template = body.raw("template")
    if template is None:
        return {}
    if depth > 0:
        raise body.unsupported("template", f"{body.field('template')}: a template inside a matrix or merge child "
                                           "has no effect in Argo CD; move it to the outer generator")
    if not isinstance(template, dict):
        raise body.invalid("template", "must be a map")
    return template


def _list(body: Fields, template: Mapping[str, Any]) -> ListGenerator:
    elements = body.raw("elements") or []
    if not isinstance(elements, list) or not all(isinstance(item, dict) for item in elements):
        raise body.invalid("elements", "must be a list of maps")
    return ListGenerator(elements=tuple(elements), elements_yaml=body.string("elementsYaml"), template=template,
                         where=body.path)


def _git(body: Fields, template: Mapping[str, Any]) -> GitGenerator:
    generator = GitGenerator(
        repo=body.string("repoURL", required=True),
        revision=body.string("revision") or "HEAD",
        directories=tuple(_path_item(item) for item in body.items("directories")),
        files=tuple(_path_item(item) for item in body.items("files")),
        path_param_prefix=body.string("pathParamPrefix"),
        values=body.string_map("values"),
        template=template,
        where=body.path,
    )
    body.integer("requeueAfterSeconds", 0)  # how often Argo CD re-reads git: the parent's poll interval here
    if generator.directories and generator.files:
        raise body.invalid("files", "give directories or files, not both")
    if not generator.directories and not generator.files:
        raise body.invalid("directories", "give directories or files")
    return generator


def _path_item(fields: Fields) -> PathItem:
    item = PathItem(path=fields.string("path", required=True), exclude=fields.boolean("exclude"))
    fields.finish()
    return item


def _matrix(body: Fields, template: Mapping[str, Any], *, depth: int) -> MatrixGenerator:
    children = body.items("generators")
    if len(children) != 2:
        raise body.invalid("generators", f"a matrix combines exactly two generators, not {len(children)}")
    first = parse_generator(children[0], depth=depth + 1)
    parse_generator(children[1], depth=depth + 1)  # refuse a bad second child now, not per parameter set
    return MatrixGenerator(first=first, second_raw=dict(children[1].data), second_where=children[1].path,
                           subject=body.subject, template=template, where=body.path, depth=depth)


def _merge(body: Fields, template: Mapping[str, Any], *, depth: int) -> MergeGenerator:
    children = body.items("generators")
    if len(children) < 2:
        raise body.invalid("generators", f"a merge needs two or more generators, not {len(children)}")
    keys = body.strings("mergeKeys")
    if not keys:
        raise body.invalid("mergeKeys", "give at least one merge key")
    return MergeGenerator(children=tuple(parse_generator(child, depth=depth + 1) for child in children),
                          merge_keys=tuple(keys), template=template, where=body.path)
