"""The render cache: a commit that changes none of an app's inputs is not rendered again.

A render's inputs are the repository directories it read (the app's path and every
local base or component its kustomizations reach, plus the targets of symlinks in
them), each with its git tree SHA at the rendered commit. An entry is found again by
scope — repository, path and a digest of every option that shapes the output — and is
valid for a new commit when every input still has the same SHA there: checking costs
a few tree lookups and no file reads. Only what rendered without error is cached.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from agent.model import Manifest, RenderSettings
from agent.render.source import RenderSource

InputIds = tuple[tuple[str, str], ...]  # (repository path, git object SHA), sorted by path


@dataclass(frozen=True)
class CacheScope:
    repo: str
    path: str
    options: str  # options_digest()


def options_digest(app: RenderSource, app_dir: str, settings: RenderSettings) -> str:
    """A digest of everything besides the files that changes what a render produces."""
    options = {
        "path": app_dir,
        "directory": dataclasses.asdict(app.directory),
        "kustomize": dataclasses.asdict(app.kustomize),
        "kustomize_path": settings.kustomize_path,
    }
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:32]


def input_ids(ids: Mapping[str, str | None]) -> InputIds:
    """Inputs in their canonical order; an absent path takes part as the empty SHA."""
    return tuple(sorted((path, sha or "") for path, sha in ids.items()))


def cache_key(scope: CacheScope, inputs: InputIds) -> str:
    """One string for a render: scope and input SHAs (for logs; the cache itself compares inputs)."""
    text = json.dumps([scope.repo, scope.path, scope.options, inputs])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class RenderCache:
    """Least recently used scopes, each with its few most recent renders."""

    def __init__(self, *, max_scopes: int = 256, per_scope: int = 4) -> None:
        self._scopes: OrderedDict[CacheScope, OrderedDict[InputIds, tuple[Manifest, ...]]] = OrderedDict()
        self._max_scopes = max_scopes
        self._per_scope = per_scope

    def watched_paths(self, scope: CacheScope) -> list[str]:
        """Every path whose SHA decides whether an entry of `scope` still holds."""
        entries = self._scopes.get(scope)
        return sorted({path for inputs in entries or () for path, _ in inputs})

    def get(self, scope: CacheScope, current: Mapping[str, str | None]) -> tuple[Manifest, ...] | None:
        """The render whose every input has the SHA it has now (`current`), if any."""
        entries = self._scopes.get(scope)
        if entries is None:
            return None
        for inputs in reversed(entries):
            if all((current.get(path) or "") == sha for path, sha in inputs):
                entries.move_to_end(inputs)
                self._scopes.move_to_end(scope)
                return entries[inputs]
        return None

    def put(self, scope: CacheScope, inputs: InputIds, manifests: Sequence[Manifest]) -> None:
        entries = self._scopes.setdefault(scope, OrderedDict())
        entries[inputs] = tuple(manifests)
        entries.move_to_end(inputs)
        self._scopes.move_to_end(scope)
        while len(entries) > self._per_scope:
            entries.popitem(last=False)
        while len(self._scopes) > self._max_scopes:
            self._scopes.popitem(last=False)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._scopes.values())
