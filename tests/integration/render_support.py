"""Helpers for the render tests: the payments-platform fixture, the pinned kustomize, a Renderer on git."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from agent.config import AppSpec, RenderSettings
from agent.model import Revision
from agent.render import Renderer
from agent.source import GitSource
from tests.support.cluster import _bin_dir
from tests.support.gitserver import GitServer, WorkTree

PLATFORM = Path(__file__).resolve().parents[1] / "fixtures" / "payments-platform"
OVERLAYS = tuple(
    f"apps/{service}/overlays/{env}"
    for service in ("payment-service", "ledger-service") for env in ("dev", "staging", "production")
)


def platform_files() -> dict[str, str]:
    """The fixture tree as `WorkTree.write` takes it."""
    return {str(path.relative_to(PLATFORM)): path.read_text() for path in sorted(PLATFORM.rglob("*")) if path.is_file()}


@functools.cache
def kustomize_binary() -> Path:
    """The pinned kustomize v5.7.1 from the local-cluster cache (not /usr/bin/kubectl's old embedded one)."""
    binary = _bin_dir() / "kustomize"
    if not binary.is_file():
        raise RuntimeError(f"{binary} is missing: run `scripts/local-cluster build` (scripts/test does)")
    return binary


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """`kustomize build` run directly, for the expected output."""
    proc = subprocess.run([str(kustomize_binary()), "build", str(directory)], capture_output=True, text=True,
                          timeout=60, check=True)
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc is not None]


def identity(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    return f"{obj['apiVersion']}/{obj['kind']}/{meta.get('namespace', '')}/{meta['name']}"


@dataclass
class RenderRig:
    """A Renderer over a GitSource on the loopback git server, and the repository it reads."""

    renderer: Renderer
    source: GitSource
    repo: WorkTree
    url: str

    def app(self, path: str, *, name: str = "shop", **fields: Any) -> AppSpec:
        return AppSpec(name=name, repo=self.url, revision="main", path=path, **fields)

    async def revision(self, sha: str) -> Revision:
        return await self.source.fetch(self.url, sha, ref="main")

    async def render(self, app: AppSpec, sha: str) -> list[dict[str, Any]]:
        return [manifest.obj for manifest in await self.renderer.render(app, await self.revision(sha))]


def make_rig(repo: WorkTree, git_server: GitServer, state: Path, *, kustomize_path: str | None = None,
             render_timeout: float = 60.0) -> RenderRig:
    """`kustomize_path` None: the pinned binary; "": whatever is on PATH, as with no `[agent] kustomize_path`."""
    source = GitSource(state / "repos")
    binary = str(kustomize_binary()) if kustomize_path is None else kustomize_path
    settings = RenderSettings(kustomize_path=binary, render_timeout=render_timeout)
    return RenderRig(Renderer(settings, source), source, repo, git_server.url(repo.name))
