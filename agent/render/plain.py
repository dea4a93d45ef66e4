"""Plain directories of manifests: which files count, and loading them.

Argo CD's `directory` semantics: the `*.yaml`, `*.yml` and `*.json` files directly in
the app's path, or below it too with `recurse`, narrowed by `include` and `exclude`
globs. A glob matches the path relative to the app's path; `*` also matches `/` and
`{a,b}` lists alternatives, as in Argo CD. Files are read in path order.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase

from agent.errors import RenderError
from agent.model import DirectorySpec, Manifest
from agent.render.documents import RenderBudget, RenderLimits, parse_stream
from agent.render.kustomize import KUSTOMIZATION_FILES

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


def select_files(files: Iterable[str], directory: DirectorySpec) -> list[str]:
    """The manifest files among `files` (paths relative to the app's path), in path order."""
    chosen = []
    for path in sorted(files):
        if not path.endswith(MANIFEST_SUFFIXES) or posixpath.basename(path) in KUSTOMIZATION_FILES:
            continue
        if "/" in path and not directory.recurse:
            continue
        if directory.exclude and matches_any(path, directory.exclude):
            continue
        if directory.include and not matches_any(path, directory.include):
            continue
        chosen.append(path)
    return chosen


def load_manifests(files: Mapping[str, bytes], *, directory: DirectorySpec | None = None, base: str = "",
                   limits: RenderLimits | None = None, budget: RenderBudget | None = None) -> list[Manifest]:
    """Parse the chosen files into objects; sources are named `base/path` (repository-relative).

    Their nodes are spent from `budget` (the render's), else from a budget for these files alone.
    """
    limits = budget.limits if budget is not None else limits or RenderLimits()
    budget = budget or RenderBudget(limits)
    manifests: list[Manifest] = []
    for path in select_files(files, directory or DirectorySpec()):
        manifests.extend(parse_stream(posixpath.join(base, path), files[path], limits, budget))
        if len(manifests) > limits.max_objects:
            raise RenderError(f"{posixpath.join(base, path)}: more than {limits.max_objects} objects in one app")
    return manifests


def matches_any(path: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(path, glob) for pattern in patterns for glob in expand_braces(pattern.removeprefix("./")))


def expand_braces(pattern: str) -> list[str]:
    """`{a,b}` alternatives (nested too) as plain globs: `x.{yaml,yml}` → `x.yaml`, `x.yml`."""
    start = pattern.find("{")
    if start < 0:
        return [pattern]
    depth = 0
    for end in range(start, len(pattern)):
        depth += {"{": 1, "}": -1}.get(pattern[end], 0)
        if depth == 0:
            break
    else:
        return [pattern]  # unbalanced: the braces are literal
    options, current, depth = [], "", 0
    for char in pattern[start + 1:end]:
        if char == "," and depth == 0:
            options.append(current)
            current = ""
            continue
        depth += {"{": 1, "}": -1}.get(char, 0)
        current += char
    options.append(current)
    head, tail = pattern[:start], pattern[end + 1:]
    return [glob for option in options for glob in expand_braces(head + option + tail)]
