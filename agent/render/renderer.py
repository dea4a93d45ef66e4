"""Render one app at one revision: plain directory or kustomization, overrides, cache.

    cache hit?  ── yes ──► the manifests of the last render with the same inputs
        │ no
    export the app's path ──► kustomization?
        ├─ yes: export what it references; YAML-bomb check; write those directories
        │       to a temporary directory; wrap in an overlay when there are overrides;
        │       `kustomize build`
        └─ no:  plain files; with overrides, written out as resources of a generated
                kustomization and built
    ──► objects, each with its source ──► cached by the inputs' tree SHAs

Errors are RenderErrors that name the app, the file and the cause.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import posixpath
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from agent.errors import RenderError
from agent.model import Manifest, RenderSettings, Revision
from agent.render.cache import CacheScope, RenderCache, cache_key, input_ids, options_digest
from agent.render.documents import RenderBudget, RenderLimits, check_stream, parse_stream
from agent.render.inputs import KustomizeInputs, TreeSource, collect_inputs, resolve
from agent.render.kustomize import KustomizeRunner, kustomization_file
from agent.render.overrides import overlay_kustomization
from agent.render.plain import MANIFEST_SUFFIXES, load_manifests
from agent.render.remote import parse_allowed
from agent.render.source import RenderSource
from agent.source.urls import redact_urls_in

log = logging.getLogger(__name__)

SOURCE_ANNOTATION = "gitops-agent.io/render-source"  # carries file and index through kustomize; removed after


class RenderObserver(Protocol):
    """Where render outcomes go (the agent's Metrics implements it)."""

    def observe_render(self, app: str, result: str, seconds: float) -> None: ...


@dataclass
class RenderStats:
    renders: int = 0  # renders actually run (cache misses), failed ones included
    cache_hits: int = 0


class Renderer:
    def __init__(self, settings: RenderSettings, source: TreeSource, *, limits: RenderLimits | None = None,
                 observer: RenderObserver | None = None) -> None:
        self._settings = settings
        self._source = source
        self._limits = limits or RenderLimits(max_render_bytes=settings.max_render_bytes,
                                              max_render_nodes=settings.max_render_nodes)
        self._observer = observer
        self._slots = asyncio.Semaphore(settings.max_concurrent_renders)
        self._cache = RenderCache()
        self._allowed_remote = parse_allowed(settings.allowed_remote_bases)
        self._kustomize = KustomizeRunner(binary=settings.kustomize_path, timeout=settings.render_timeout,
                                          remote=bool(self._allowed_remote))
        self.stats = RenderStats()

    @property
    def kustomize_builds(self) -> int:
        return self._kustomize.builds

    async def render(self, app: RenderSource, revision: Revision) -> list[Manifest]:
        """The app's objects at `revision`, in a deterministic order. Do not mutate them: they are cached."""
        started = time.monotonic()
        app_dir = resolve("", app.path)
        if app_dir is None:
            raise RenderError(f"app {app.name}: path {app.path!r} leaves the repository")
        scope = CacheScope(app.repo, app_dir, options_digest(app, app_dir, self._settings))
        cached = await self._cached(scope, app.repo, revision)
        if cached is not None:
            self.stats.cache_hits += 1
            self._observe(app.name, "cache_hit", started)
            return list(cached)
        async with self._slots:
            self.stats.renders += 1
            try:
                manifests, inputs = await self._render(app, app_dir, revision)
            except RenderError as exc:
                self._observe(app.name, "failed", started)
                raise RenderError(f"app {app.name}: {exc.message}") from exc
        ids = await self._input_ids(app.repo, revision, inputs)
        self._cache.put(scope, ids, manifests)
        self._observe(app.name, "rendered", started)
        log.info("rendered %d objects from %s in %.3fs (render key %s)", len(manifests), app_dir or ".",
                 time.monotonic() - started, cache_key(scope, ids), extra={"app": app.name, "revision": revision.sha})
        return manifests

    def _observe(self, app: str, result: str, started: float) -> None:
        if self._observer is not None:
            self._observer.observe_render(app, result, time.monotonic() - started)

    async def _cached(self, scope: CacheScope, url: str, revision: Revision) -> tuple[Manifest, ...] | None:
        watched = self._cache.watched_paths(scope)
        if not watched:
            return None
        ids = await self._source.tree_ids(url, revision, watched)
        return self._cache.get(scope, {path: entry.sha if entry else None for path, entry in ids.items()})

    async def _input_ids(self, url: str, revision: Revision, directories: Iterable[str]) -> tuple[tuple[str, str], ...]:
        """The inputs with their SHAs, symlink targets below them included (a tree holds only a link's path)."""
        paths = set(directories)
        pending = sorted(paths)
        while pending:
            pending = sorted(set(await self._source.symlink_targets(url, revision, pending)) - paths)
            paths.update(pending)
        ids = await self._source.tree_ids(url, revision, sorted(paths))
        return input_ids({path: entry.sha if entry else None for path, entry in ids.items()})

    async def _render(self, app: RenderSource, app_dir: str, revision: Revision) -> tuple[list[Manifest], list[str]]:
        """One render within one budget (bytes held, YAML nodes parsed), so that
        `max_concurrent_renders` of them fit the agent's memory together."""
        budget = RenderBudget(self._limits)
        exported = await self._source.export(app.repo, revision, app_dir, max_bytes=budget.bytes_left)
        budget.spend_bytes(app_dir or ".", sum(len(data) for data in exported.files.values()))
        name = kustomization_file(exported.files)
        if name is not None:
            inputs = await collect_inputs(self._source, app.repo, revision, app_dir, exported.files, self._limits,
                                          allowed_remote=self._allowed_remote, budget=budget)
            manifests = await self._build(app, app_dir, name, inputs, budget)
            return self._counted(manifests, app_dir), sorted(inputs.roots)
        manifests = await asyncio.to_thread(load_manifests, exported.files, directory=app.directory, base=app_dir,
                                            budget=budget)
        if not app.kustomize.empty:
            manifests = await self._build_plain(app, app_dir, manifests, budget)
        return self._counted(manifests, app_dir), [app_dir]

    def _counted(self, manifests: list[Manifest], app_dir: str) -> list[Manifest]:
        if len(manifests) > self._limits.max_objects:
            raise RenderError(f"{app_dir or '.'}: renders {len(manifests)} objects, over the limit of "
                              f"{self._limits.max_objects}")
        return manifests

    async def _build(self, app: RenderSource, app_dir: str, name: str, inputs: KustomizeInputs,
                     budget: RenderBudget) -> list[Manifest]:
        """kustomize over the exported directories, wrapped in an overlay when the app has overrides.

        What kustomize is handed is held to a budget of its own (its memory is its own process's);
        what it prints counts against the render's.
        """
        roots = inputs.outermost()
        await asyncio.to_thread(_check_yaml, roots, RenderBudget(self._limits))
        async with _workspace() as root:
            await asyncio.to_thread(_write_roots, root / "repo", roots)
            target = root / "repo" / app_dir if app_dir else root / "repo"
            if not app.kustomize.empty:
                resource = posixpath.join("../repo", app_dir) if app_dir else "../repo"
                overlay = overlay_kustomization(app.kustomize, [resource])
                await asyncio.to_thread(_write_files, root / "overrides", {"kustomization.yaml": _dump([overlay])})
                target = root / "overrides"
            output, warnings = await self._kustomize.build(target, where=posixpath.join(app_dir, name),
                                                           scrub=_scrubber(root, app_dir), home=root / "home",
                                                           max_output=budget.bytes_left)
        if warnings:
            log.warning("kustomize: %s", warnings[-1000:], extra={"app": app.name})
        source = f"kustomize build {app_dir or '.'}"
        budget.spend_bytes(source, len(output))
        return await asyncio.to_thread(parse_stream, source, output, budget=budget)

    async def _build_plain(self, app: RenderSource, app_dir: str, manifests: Sequence[Manifest],
                           budget: RenderBudget) -> list[Manifest]:
        """Overrides over a plain directory: its objects become the resources of a generated kustomization."""
        files = _annotated_files(manifests)
        files["kustomization.yaml"] = _dump([overlay_kustomization(app.kustomize, sorted(files))])
        async with _workspace() as root:
            await asyncio.to_thread(_write_files, root / "plain", files)
            output, warnings = await self._kustomize.build(root / "plain", where=f"{app_dir or '.'} (overrides)",
                                                           scrub=_scrubber(root, app_dir), home=root / "home",
                                                           max_output=budget.bytes_left)
        if warnings:
            log.warning("kustomize: %s", warnings[-1000:], extra={"app": app.name})
        source = f"kustomize build {app_dir or '.'}"
        budget.spend_bytes(source, len(output))
        built = await asyncio.to_thread(parse_stream, source, output, budget=budget)
        return [_restore_source(manifest) for manifest in built]


@contextlib.asynccontextmanager
async def _workspace() -> AsyncIterator[Path]:
    """A private temporary directory, removed afterwards; resolved, so kustomize's messages name it as we do."""
    path = await asyncio.to_thread(_make_temporary_directory)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _make_temporary_directory() -> Path:
    path = Path(tempfile.mkdtemp(prefix="gitops-agent-render-")).resolve()
    (path / "home").mkdir(mode=0o700)  # kustomize's HOME: empty, and gone with the workspace
    return path


def _scrubber(root: Path, app_dir: str) -> Callable[[str], str]:
    """Rewrite workspace paths in kustomize's messages as repository paths, and drop credentials from URLs."""
    replacements = [
        (f"{root}/repo/", ""), (f"{root}/repo", "."), (f"{root}/overrides", "<overrides>"),
        (f"{root}/plain/", ""), (f"{root}/plain", app_dir or "."), (str(root), "<workspace>"),
    ]

    def scrub(text: str) -> str:
        for old, new in replacements:
            text = text.replace(old, new)
        return redact_urls_in(text)  # a remote base's URL may carry a token

    return scrub


def _check_yaml(roots: Mapping[str, Mapping[str, bytes]], budget: RenderBudget) -> None:
    for root, files in roots.items():
        for rel, content in files.items():
            if rel.endswith(MANIFEST_SUFFIXES) or posixpath.basename(rel) == "Kustomization":
                check_stream(posixpath.join(root, rel), content, budget.limits, budget)


def _write_roots(base: Path, roots: Mapping[str, Mapping[str, bytes]]) -> None:
    for root, files in roots.items():
        _write_files(base / root if root else base, files)


def _write_files(directory: Path, files: Mapping[str, bytes]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        parts = rel.split("/")
        if rel.startswith("/") or any(part in ("", ".", "..") for part in parts):
            raise RenderError(f"{rel}: unsafe file name")
        target = directory.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)


class _NoAliasDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Objects that shared YAML anchors are written out in full, not as aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _dump(documents: Sequence[Any]) -> bytes:
    text: str = yaml.dump_all(documents, Dumper=_NoAliasDumper, sort_keys=False)
    return text.encode()


def _annotated_files(manifests: Sequence[Manifest]) -> dict[str, bytes]:
    """The objects, grouped by source file, each annotated with where it came from."""
    by_source: dict[str, list[Any]] = {}
    for manifest in manifests:
        obj = copy.deepcopy(manifest.obj)
        meta = obj.setdefault("metadata", {})
        meta["annotations"] = {**(meta.get("annotations") or {}),
                               SOURCE_ANNOTATION: f"{manifest.index}:{manifest.source}"}
        by_source.setdefault(manifest.source, []).append(obj)
    return {source: _dump(objects) for source, objects in by_source.items()}


def _restore_source(manifest: Manifest) -> Manifest:
    meta = manifest.obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    origin = annotations.pop(SOURCE_ANNOTATION, None)
    if not annotations:
        meta.pop("annotations", None)
    if not isinstance(origin, str) or ":" not in origin:
        return manifest
    index, _, source = origin.partition(":")
    return Manifest(obj=manifest.obj, source=source, index=int(index))
