"""Generators → parameter sets, as Argo CD's ApplicationSet controller computes them. Pure.

The git generators read a repository through `GitTree` values the caller provides, keyed by
(repoURL, revision). A tree that is missing, or a file whose contents are missing, raises
`NeedTrees` naming what to read; the caller reads it and asks again. So nothing here does I/O,
and the caller may hand over a whole tree at once to need a single round.

With the default template syntax parameters are flat strings (`path`, `path.basename`,
`path[1]`, `cluster.name`); with `goTemplate: true` they are nested values (`.path.basename`).
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.argocd.fields import Fields, InvalidDefinition
from agent.argocd.generators import (
    Generator,
    GitGenerator,
    ListGenerator,
    MatrixGenerator,
    MergeGenerator,
    parse_generator,
)
from agent.argocd.patterns import directories, git_pathspec_match, go_path_match
from agent.argocd.templates import Syntax, TemplateError, go_string, render_string, render_value, sanitize_name
from agent.argocd.yamlvalues import load_params_file

Params = dict[str, Any]


@dataclass(frozen=True)
class GitTree:
    """One repository at one revision: every file path (`/`-separated, from the root), and the
    contents of the files read so far."""

    files: tuple[str, ...]
    contents: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class TreeRequest:
    """What to read: the listing of `repo` at `revision`, and the contents of `files` in it."""

    repo: str
    revision: str
    files: tuple[str, ...] = ()


Trees = Mapping[tuple[str, str], GitTree]


class NeedTrees(Exception):
    def __init__(self, requests: tuple[TreeRequest, ...]) -> None:
        super().__init__(", ".join(f"{r.repo}@{r.revision}" for r in requests))
        self.requests = requests


class GenerationError(ValueError):
    """A generator that cannot produce parameters; the message names the generator's field."""


def generate_params(generator: Generator, *, syntax: Syntax, trees: Trees) -> list[Params]:
    if isinstance(generator, ListGenerator):
        return _list_params(generator, syntax)
    if isinstance(generator, GitGenerator):
        return _git_params(generator, syntax, trees)
    if isinstance(generator, MatrixGenerator):
        return _matrix_params(generator, syntax, trees)
    return _merge_params(generator, syntax, trees)


# ---------------------------------------------------------------------------------------------- list


def _list_params(generator: ListGenerator, syntax: Syntax) -> list[Params]:
    sets = [_list_element(generator, index, element, syntax) for index, element in enumerate(generator.elements)]
    if generator.elements_yaml:
        try:
            extra = load_params_file(generator.elements_yaml.encode(), list_only=True)
        except ValueError as exc:
            raise GenerationError(f"{generator.where}.elementsYaml: {exc}") from exc
        sets.extend(extra)
    return sets


def _list_element(generator: ListGenerator, index: int, element: Mapping[str, Any], syntax: Syntax) -> Params:
    if syntax.go:
        return dict(element)
    params: Params = {}
    where = f"{generator.where}.elements[{index}]"
    for key, value in element.items():
        if key == "values" and isinstance(value, dict):
            for name, item in value.items():
                params[f"values.{name}"] = _legacy_string(item, f"{where}.values.{name}")
        else:
            params[key] = _legacy_string(value, f"{where}.{key}")
    return params


def _legacy_string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise GenerationError(f"{where}: must be a string without goTemplate, not {value!r} (quote it)")
    return value


# ---------------------------------------------------------------------------------------------- git


def _tree(generator: GitGenerator, trees: Trees) -> GitTree:
    tree = trees.get((generator.repo, generator.revision))
    if tree is None:
        raise NeedTrees((TreeRequest(generator.repo, generator.revision),))
    return tree


def _git_params(generator: GitGenerator, syntax: Syntax, trees: Trees) -> list[Params]:
    tree = _tree(generator, trees)
    if generator.directories:
        sets = [_path_params(path, None, generator.path_param_prefix, syntax)
                for path in _matching_directories(generator, tree)]
    else:
        sets = _file_params(generator, tree, syntax)
    return [_with_values(params, generator, syntax) for params in sets]


def _matching_directories(generator: GitGenerator, tree: GitTree) -> list[str]:
    """Directories matching an included path and no excluded one (exclusion wins, whatever the order)."""
    matched = []
    for directory in directories(tree.files):
        included = excluded = False
        for index, item in enumerate(generator.directories):
            try:
                hit = go_path_match(item.path, directory)
            except ValueError as exc:
                raise GenerationError(f"{generator.where}.directories[{index}].path: {exc}") from exc
            excluded |= hit and item.exclude
            included |= hit and not item.exclude
        if included and not excluded:
            matched.append(directory)
    return matched


def _file_params(generator: GitGenerator, tree: GitTree, syntax: Syntax) -> list[Params]:
    included = {path for item in generator.files if not item.exclude for path in tree.files
                if git_pathspec_match(item.path, path)}
    excluded = {path for item in generator.files if item.exclude for path in included
                if git_pathspec_match(item.path, path)}
    matched = sorted(included - excluded)
    missing = tuple(path for path in matched if path not in tree.contents)
    if missing:
        raise NeedTrees((TreeRequest(generator.repo, generator.revision, missing),))
    sets: list[Params] = []
    for path in matched:
        try:
            objects = load_params_file(tree.contents[path])
        except ValueError as exc:
            raise GenerationError(f"{generator.where}.files: {path}: {exc}") from exc
        for obj in objects:
            params = dict(obj) if syntax.go else flatten(obj)
            params.update(_path_params(posixpath.dirname(path) or ".", path, generator.path_param_prefix, syntax))
            sets.append(params)
    return sets


def _path_params(directory: str, file: str | None, prefix: str, syntax: Syntax) -> Params:
    """`path` and its parts, as the git generators name them (a file's basename is its directory's)."""
    basename = posixpath.basename(directory) or directory
    parts: dict[str, Any] = {"path": directory, "basename": basename, "basenameNormalized": sanitize_name(basename)}
    if file is not None:
        filename = posixpath.basename(file)
        parts |= {"filename": filename, "filenameNormalized": sanitize_name(filename)}
    if syntax.go:
        parts["segments"] = directory.split("/")
        return {prefix: {"path": parts}} if prefix else {"path": parts}
    name = f"{prefix}.path" if prefix else "path"
    flat = {name if key == "path" else f"{name}.{key}": value for key, value in parts.items()}
    flat |= {f"{name}[{index}]": part for index, part in enumerate(directory.split("/")) if part}
    return flat


def _with_values(params: Params, generator: GitGenerator, syntax: Syntax) -> Params:
    """`values` rendered with the set's own parameters, under `values.` (a map `values` with goTemplate)."""
    if not generator.values:
        return params
    try:
        rendered = {key: render_string(text, params, syntax) for key, text in generator.values.items()}
    except TemplateError as exc:
        raise GenerationError(f"{generator.where}.values: {exc}") from exc
    if syntax.go:
        return {**params, "values": rendered}
    return {**params, **{f"values.{key}": value for key, value in rendered.items()}}


def flatten(obj: Mapping[str, Any]) -> dict[str, str]:
    """Nested values as Argo CD flattens a file's parameters: `a.b.c`, list items `a.0`, every
    leaf printed as Go prints it; empty maps and lists leave nothing."""
    flat: dict[str, str] = {}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else str(key), item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(f"{prefix}.{index}" if prefix else str(index), item)
        else:
            flat[prefix] = go_string(value)

    walk("", obj)
    return flat


# ---------------------------------------------------------------------------------------------- matrix, merge


def _matrix_params(generator: MatrixGenerator, syntax: Syntax, trees: Trees) -> list[Params]:
    combined: list[Params] = []
    for first in generate_params(generator.first, syntax=syntax, trees=trees):
        second = _interpolated(generator, first, syntax)
        for params in generate_params(second, syntax=syntax, trees=trees):
            combined.append(deep_merge(params, first) if syntax.go else _combine_flat(first, params, generator))
    return combined


def _interpolated(generator: MatrixGenerator, params: Params, syntax: Syntax) -> Generator:
    """The second child with the first child's parameters filled in, parsed again."""
    raw = dict(generator.second_raw)
    git = raw.get("git")
    values = git.get("values") if isinstance(git, dict) else None
    if isinstance(git, dict) and isinstance(values, dict):
        raw["git"] = {key: value for key, value in git.items() if key != "values"}
    try:
        raw = render_value(raw, params, syntax) if params else raw
    except TemplateError as exc:
        raise GenerationError(f"{generator.second_where}: {exc}") from exc
    if isinstance(values, dict):
        # A `values` entry naming the git generator's own parameters is left for it to fill in.
        raw["git"]["values"] = _partly_rendered(values, params, syntax) if params else values
    try:
        return parse_generator(Fields(generator.subject, generator.second_where, raw), depth=generator.depth + 1)
    except InvalidDefinition as exc:
        raise GenerationError(str(exc)) from exc


def _partly_rendered(values: Mapping[str, Any], params: Params, syntax: Syntax) -> dict[str, Any]:
    strict = Syntax(go=syntax.go, missing_key_error=True)
    rendered = {}
    for key, text in values.items():
        try:
            rendered[key] = render_string(text, params, strict) if isinstance(text, str) else text
        except TemplateError:
            rendered[key] = text
    return rendered


def _combine_flat(first: Params, second: Params, generator: MatrixGenerator) -> Params:
    """Argo CD's CombineStringMaps: every value as a string; a key both children give must agree."""
    try:
        combined = {key: go_string(value) for key, value in first.items()}
        texts = {key: go_string(value) for key, value in second.items()}
    except TemplateError as exc:
        raise GenerationError(f"{generator.where}: {exc}") from exc
    for key, text in texts.items():
        if key in combined and combined[key] != text:
            raise GenerationError(f"{generator.where}: both generators give {key!r}, as {combined[key]!r} "
                                  f"and {text!r}")
        combined[key] = text
    return combined


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> Params:
    """`override` over `base`, maps merged key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _merge_params(generator: MergeGenerator, syntax: Syntax, trees: Trees) -> list[Params]:
    children = [generate_params(child, syntax=syntax, trees=trees) for child in generator.children]
    base = _by_merge_key(generator, 0, children[0])
    for index, sets in enumerate(children[1:], start=1):
        for key, override in _by_merge_key(generator, index, sets).items():
            if key in base:
                base[key] = deep_merge(base[key], override) if syntax.go else {**base[key], **override}
    return list(base.values())


def _by_merge_key(generator: MergeGenerator, index: int, sets: list[Params]) -> dict[str, Params]:
    keys = sorted(set(generator.merge_keys))
    found: dict[str, Params] = {}
    for params in sets:
        key = json.dumps({name: params.get(name) for name in keys}, sort_keys=True, separators=(",", ":"))
        if key in found:
            raise GenerationError(f"{generator.where}.generators[{index}]: two parameter sets have the same merge "
                                  f"keys {key}; merge needs them unique")
        found[key] = params
    return found
