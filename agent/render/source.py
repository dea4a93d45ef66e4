"""What one render needs to know about an app: a small read-only view, so that rendering does not
depend on the configuration's AppSpec (which satisfies it)."""

from __future__ import annotations

from typing import Protocol

from agent.model import DirectorySpec, KustomizeSpec


class RenderSource(Protocol):
    """What one render needs to know about an app: where its files are and how to render them.
    An `AppSpec` is one; rendering needs nothing else of it."""

    @property
    def name(self) -> str: ...

    @property
    def repo(self) -> str: ...

    @property
    def path(self) -> str: ...

    @property
    def directory(self) -> DirectorySpec: ...

    @property
    def kustomize(self) -> KustomizeSpec: ...
