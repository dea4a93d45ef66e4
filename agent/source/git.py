"""GitSource: resolve a revision, fetch its commit into the cache, export an app's path.

dulwich is blocking, so every call into it runs in a worker thread. Per repository a
reader/writer lock lets exports run side by side while a fetch or a cache removal
runs alone. `max_concurrent_fetches` bounds git network requests (ls-remote and
fetch) across all repositories.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol, TypeVar

from dulwich.client import GitClient

from agent.argocd.credentials import RepoCredentials
from agent.errors import SourceError
from agent.model import RepoSpec, Revision
from agent.source import cache, trees
from agent.source.cache import CacheCorrupt
from agent.source.credentials import Access, CredentialStore
from agent.source.export import ExportLimits
from agent.source.ondisk import CachedRepo, OnDisk
from agent.source.resolver import FULL_SHA, SHORT_SHA, RefCache, Refs, match_revision, tips_with_prefix
from agent.source.transport import NETWORK_ERRORS, GitRequestError, open_client, request_error
from agent.source.trees import TreeEntry
from agent.source.urls import redact_url

T = TypeVar("T")


class GitObserver(Protocol):
    """Where request outcomes go (the agent's Metrics implements it)."""

    def observe_git_request(self, repo: str, request: str, result: str, seconds: float) -> None: ...

    def observe_git_fetch(self, repo: str, seconds: float) -> None: ...


@dataclass(frozen=True)
class SourceOptions:
    """How the source talks to git servers; built from `[agent]` by the runtime."""

    max_concurrent_fetches: int = 4
    timeout: float = 60.0  # seconds per git network request (`git_timeout`)
    ls_remote_ttl: float = 180.0  # an ls-remote answer is shared this long (the poll interval)
    limits: ExportLimits = field(default_factory=ExportLimits)


@dataclass(frozen=True)
class SourceFiles:
    """The files under an app's path at one revision: relative path → content."""

    revision: Revision
    files: Mapping[str, bytes]


class GitSource:
    """Resolves revisions and exports paths, caching bare repositories on disk."""

    def __init__(self, cache_dir: Path, *, options: SourceOptions | None = None,
                 repositories: Sequence[RepoSpec] = (), observer: GitObserver | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._cache_dir = cache_dir
        self._options = options or SourceOptions()
        self._credentials = CredentialStore(repositories)
        self._observer = observer
        self._network = asyncio.Semaphore(self._options.max_concurrent_fetches)
        self._repos: dict[str, CachedRepo] = {}
        self._on_disk: dict[Path, OnDisk] = {}
        self._refs = RefCache(self._ls_remote, ttl=self._options.ls_remote_ttl, clock=clock)

    def repo_dir(self, url: str) -> Path:
        return self._cache_dir / cache.cache_dir_name(url)

    def close(self) -> None:
        """Close the repository handles kept for readers (the agent is stopping)."""
        for disk in self._on_disk.values():
            disk.handles.close()

    def invalidate(self, url: str) -> None:
        """Forget the shared ls-remote answer for `url` (a push arrived, or a refresh was asked for)."""
        self._refs.invalidate(url)

    def reconfigure(self, options: SourceOptions, repositories: Sequence[RepoSpec]) -> None:
        """Take reloaded settings: credentials, timeout, export limits, how long an ls-remote is shared.

        `max_concurrent_fetches` keeps its value: requests in flight hold the semaphore it sized.
        A request already started finishes with the settings it started with.
        """
        self._options = replace(options, max_concurrent_fetches=self._options.max_concurrent_fetches)
        self._credentials = CredentialStore(repositories, self._credentials.secrets)
        self._refs.ttl = options.ls_remote_ttl

    def use_secrets(self, secrets: Sequence[RepoCredentials]) -> None:
        """Repository credentials from Argo CD's Secrets, as the watch sees them now (see CredentialStore)."""
        self._credentials = CredentialStore(self._credentials.repositories, secrets)

    # ------------------------------------------------------------- the three verbs

    async def resolve(self, url: str, revision: str) -> str:
        """The full commit SHA a branch, tag, full or short SHA, or HEAD names right now."""
        if FULL_SHA.match(revision):
            return revision
        refs = await self._refs.get(url)
        sha = match_revision(refs, revision)
        if sha is not None:
            return sha
        if SHORT_SHA.match(revision):
            return await self._resolve_short(url, revision, refs)
        raise SourceError(f"{redact_url(url)}: revision {revision!r} not found (no such branch or tag)")

    async def fetch(self, url: str, sha: str, *, ref: str = "") -> Revision:
        """Make sure commit `sha` is cached (fetching only when it is not) and describe it."""
        repo = self._repo(url)

        async def present() -> Revision:
            await self._ensure(repo, sha)
            described = repo.disk.described.get(sha)
            if described is None:
                described = await repo.disk.read(cache.describe, sha, "")
                repo.disk.know(sha, described)
            return replace(described, ref=ref)

        return await self._recovering(repo, present)

    async def export(self, url: str, revision: Revision, path: str, *, max_bytes: int | None = None) -> SourceFiles:
        """The files under `path` at `revision`, refusing anything that leaves the repository.

        `max_bytes`: what is left of the render's budget, when that is less than `max_repo_size`.
        """
        repo = self._repo(url)
        limits = self._options.limits
        if max_bytes is not None and max_bytes < limits.max_total_bytes:
            limits = replace(limits, max_total_bytes=max_bytes, total_key="what is left of max_render_bytes")

        async def read() -> dict[str, bytes]:
            await self._ensure(repo, revision.sha)
            return await repo.disk.read(cache.export, url, revision.sha, path, limits)

        return SourceFiles(revision=revision, files=await self._recovering(repo, read))

    async def reachable(self, url: str, target: str, tip: str) -> bool:
        """Whether commit `target` is `tip` or one of its ancestors. The cache holds shallow
        history; when the walk meets its edge, every branch and tag is fetched in full once."""
        repo = self._repo(url)

        async def walk() -> bool:
            await self._ensure(repo, tip)
            found = await repo.disk.read(cache.reaches, tip, target)
            if found is None:
                async with repo.disk.writing():
                    await self._fetch(repo, [], depth=cache.UNSHALLOW_DEPTH)
                found = await repo.disk.read(cache.reaches, tip, target)
            return bool(found)

        return await self._recovering(repo, walk)

    # ------------------------------------------------------------- for the render cache (issue 5)

    async def tree_ids(self, url: str, revision: Revision, paths: Sequence[str]) -> dict[str, TreeEntry | None]:
        """What each path names at `revision`: the git tree SHA of a directory (blob SHA of a file),
        following symlinks inside the repository; None when absent. The render cache keys on these."""
        return await self._read_tree(url, revision, trees.tree_entries, list(paths))

    async def symlink_targets(self, url: str, revision: Revision, paths: Sequence[str]) -> tuple[str, ...]:
        """Repository paths that symbolic links below `paths` point to (their content is not in the tree SHA)."""
        walk = functools.partial(trees.symlink_targets, url=url, limits=self._options.limits)
        return await self._read_tree(url, revision, walk, list(paths))

    # ------------------------------------------------------------- for ApplicationSet git generators

    async def list_files(self, url: str, revision: Revision) -> tuple[str, ...]:
        """Every file path of the repository at `revision` (capped by max_repo_files and git_timeout)."""
        walk = functools.partial(trees.list_files, url=url, limits=self._options.limits)
        return await self._read_tree(url, revision, lambda handles, sha, _: walk(handles, sha), [])

    async def read_files(self, url: str, revision: Revision, paths: Sequence[str]) -> dict[str, bytes]:
        """The contents of some files at `revision` (capped by max_file_size and max_repo_size)."""
        read = functools.partial(trees.read_files, url=url, limits=self._options.limits)
        return await self._read_tree(url, revision, read, list(paths))

    async def _read_tree(self, url: str, revision: Revision, read: Callable[[cache.RepoHandles, str, list[str]], T],
                         paths: list[str]) -> T:
        repo = self._repo(url)

        async def run() -> T:
            await self._ensure(repo, revision.sha)
            return await repo.disk.read(read, revision.sha, paths)

        return await self._recovering(repo, run)

    # ------------------------------------------------------------- cache upkeep

    def _repo(self, url: str) -> CachedRepo:
        repo = self._repos.get(url)
        if repo is None:
            path = self.repo_dir(url)
            disk = self._on_disk.get(path)
            if disk is None:
                disk = self._on_disk[path] = OnDisk(cache.RepoHandles(path))
            repo = self._repos[url] = CachedRepo(url, disk)
        return repo

    async def _recovering(self, repo: CachedRepo, operation: Callable[[], Awaitable[T]]) -> T:
        """Run `operation`; when the cache turns out corrupt, remove it and run it once more."""
        try:
            return await operation()
        except CacheCorrupt as exc:
            await self._discard(repo, str(exc))
        try:
            return await operation()
        except CacheCorrupt as exc:
            raise SourceError(f"{redact_url(repo.url)}: the repository cache is unreadable even after "
                              f"fetching it again: {exc}") from exc

    async def _discard(self, repo: CachedRepo, problem: str) -> None:
        cache.log_removal(repo.url, repo.path, problem)
        async with repo.disk.writing():
            await asyncio.to_thread(cache.remove, repo.path)
            repo.disk.forget()
            repo.verified = True

    async def _ensure(self, repo: CachedRepo, sha: str) -> None:
        """Fetch `sha` unless the cache has it; the first look per process also verifies the cache."""
        if not repo.verified:
            async with repo.disk.writing():
                if not repo.verified:
                    await asyncio.to_thread(cache.verify, repo.path)
                    repo.verified = True
        if sha in repo.disk.commits:
            return
        if await repo.disk.read(cache.has_commit, sha):
            repo.disk.know(sha)
            return
        async with repo.disk.writing():
            if await asyncio.to_thread(cache.has_commit, repo.disk.handles, sha):
                repo.disk.know(sha)
                return
            if await asyncio.to_thread(cache.too_many_packs, repo.path):
                await asyncio.to_thread(cache.remove, repo.path)
                repo.disk.forget()
            await self._fetch_commit(repo, sha)
            repo.disk.know(sha)

    async def _fetch_commit(self, repo: CachedRepo, sha: str) -> None:
        """Shallow fetch of just `sha`; a full fetch of every branch and tag when the server refuses that."""
        try:
            await self._fetch(repo, [sha], depth=1)
        except GitRequestError as exc:
            if not exc.server_refused:
                raise
            await self._fetch(repo, [], depth=cache.UNSHALLOW_DEPTH)
        if not await asyncio.to_thread(cache.keep, repo.path, sha):
            raise SourceError(f"{redact_url(repo.url)}: commit {sha[:12]} not found: the server did not send it "
                              "(it does not exist, or no branch or tag leads to it)")

    # ------------------------------------------------------------- network

    async def _ls_remote(self, url: str) -> Refs:
        access = self._credentials.access(url)

        def call(client: GitClient, path: str) -> Refs:
            return {name: sha for name, sha in client.get_refs(path.encode()).refs.items() if sha is not None}

        return await self._request(url, "ls-remote", access, call)

    async def _fetch(self, repo: CachedRepo, wants: list[str], *, depth: int) -> None:
        access = self._credentials.access(repo.url)

        def call(client: GitClient, path: str) -> None:
            cache.fetch(client, path, repo.path, wants, depth=depth)

        started = time.monotonic()
        await self._request(repo.url, "fetch", access, call)
        if self._observer is not None:
            self._observer.observe_git_fetch(redact_url(repo.url), time.monotonic() - started)

    async def _request(self, url: str, request: str, access: Access, call: Callable[[GitClient, str], T]) -> T:
        """One git network request in a thread, bounded, counted, and with errors made safe to show."""
        def run() -> T:
            client, path = open_client(url, access, timeout=self._options.timeout,
                                       key_dir=self._cache_dir / ".ssh-keys")
            try:
                return call(client, path)
            except NETWORK_ERRORS as exc:
                raise request_error(url, request, exc, access.secrets) from None
            finally:
                client.close()

        result, started = "succeeded", 0.0
        try:
            async with self._network:
                started = time.monotonic()  # the request's own time, not the wait for a slot
                return await asyncio.to_thread(run)
        except GitRequestError as exc:
            result = exc.result
            raise
        finally:
            if self._observer is not None and started:
                self._observer.observe_git_request(redact_url(url), request, result, time.monotonic() - started)

    async def _resolve_short(self, url: str, prefix: str, refs: Refs) -> str:
        """A short SHA: a branch or tag tip, else a commit in the cache, else after a full fetch."""
        tips = tips_with_prefix(refs, prefix)
        if len(tips) == 1:
            return tips.pop()
        repo = self._repo(url)

        async def find() -> list[str]:
            found = await repo.disk.read(cache.commits_with_prefix, prefix)
            if found:
                return found
            async with repo.disk.writing():
                await self._fetch(repo, [], depth=cache.UNSHALLOW_DEPTH)
            return await repo.disk.read(cache.commits_with_prefix, prefix)

        found = await self._recovering(repo, find)
        if len(found) > 1:
            raise SourceError(f"{redact_url(url)}: revision {prefix!r} is ambiguous ({len(found)} commits)")
        if not found:
            raise SourceError(f"{redact_url(url)}: revision {prefix!r} not found (no such branch, tag or commit)")
        return found[0]
