"""Git through dulwich: one bare repository per URL under `state_dir/repos/`.

dulwich is blocking, so every call into it runs in a worker thread, serialized per
repository (a dulwich `Repo` is not safe to share between threads).
"""

from __future__ import annotations

import asyncio
import hashlib
import posixpath
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from dulwich.client import HTTPUnauthorized, get_transport_and_path
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository
from dulwich.objects import Blob, Commit, ObjectID, Tree
from dulwich.refs import Ref
from dulwich.repo import Repo

from agent.errors import SourceError
from agent.model import Revision

_FULL_SHA = re.compile(r"^[0-9a-f]{40}$")
_NETWORK_ERRORS = (OSError, GitProtocolError, HangupException, HTTPUnauthorized)


def redact_url(url: str) -> str:
    """The URL without a password or token, fit for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None and "@" not in parts.netloc:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{user}:***@{host}" if parts.password is not None else f"{user}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass(frozen=True)
class ExportLimits:
    max_files: int = 10_000
    max_file_bytes: int = 4 * 1024 * 1024
    max_total_bytes: int = 64 * 1024 * 1024


@dataclass(frozen=True)
class SourceFiles:
    """The files under an app's path at one revision: relative path → content."""

    revision: Revision
    files: Mapping[str, bytes]


class GitSource:
    """Resolves revisions and exports paths, caching bare repositories on disk."""

    def __init__(self, cache_dir: Path, *, max_concurrent_fetches: int = 4,
                 limits: ExportLimits | None = None) -> None:
        self._cache_dir = cache_dir
        self._fetches = asyncio.Semaphore(max_concurrent_fetches)
        self._locks: dict[str, asyncio.Lock] = {}
        self._limits = limits or ExportLimits()

    def _lock(self, url: str) -> asyncio.Lock:
        return self._locks.setdefault(url, asyncio.Lock())

    def repo_dir(self, url: str) -> Path:
        name = re.sub(r"[^A-Za-z0-9._-]+", "-", urlsplit(url).path.strip("/"))[-60:] or "repo"
        digest = hashlib.sha256(url.encode()).hexdigest()[:12]
        return self._cache_dir / f"{name}-{digest}.git"

    async def resolve(self, url: str, revision: str) -> str:
        """Ask the remote (one ls-remote) which commit a branch, tag or HEAD names."""
        if _FULL_SHA.match(revision):
            return revision
        async with self._fetches:
            refs = await asyncio.to_thread(_ls_remote, url)
        return _match_ref(url, refs, revision)

    async def fetch(self, url: str, sha: str, *, ref: str = "") -> Revision:
        """Make sure `sha` is in the cache (fetching it if not) and describe it."""
        async with self._lock(url):
            repo_dir = self.repo_dir(url)
            if not await asyncio.to_thread(_has_commit, repo_dir, sha):
                async with self._fetches:
                    await asyncio.to_thread(_fetch_commit, url, repo_dir, sha)
            return await asyncio.to_thread(_describe, url, repo_dir, sha, ref)

    async def export(self, url: str, revision: Revision, path: str) -> SourceFiles:
        """The files under `path` at `revision`, refusing anything that leaves the repository."""
        async with self._lock(url):
            files = await asyncio.to_thread(_export, url, self.repo_dir(url), revision.sha, path, self._limits)
        return SourceFiles(revision=revision, files=files)


def _ls_remote(url: str) -> dict[bytes, bytes]:
    client, path = get_transport_and_path(url)
    try:
        result: Any = client.get_refs(path.encode() if isinstance(path, str) else path)
    except HTTPUnauthorized as exc:
        raise SourceError(f"{redact_url(url)}: authentication refused") from exc
    except _NETWORK_ERRORS as exc:
        raise SourceError(f"{redact_url(url)}: ls-remote failed: {_reason(exc)}") from exc
    refs = getattr(result, "refs", result)
    return dict(refs)


def _reason(exc: BaseException) -> str:
    return str(exc).replace("\n", " ") or type(exc).__name__


def _match_ref(url: str, refs: Mapping[bytes, bytes], revision: str) -> str:
    wanted = revision.encode()
    candidates: Sequence[bytes] = (
        [b"HEAD"] if revision == "HEAD" else
        [b"refs/tags/" + wanted + b"^{}", b"refs/tags/" + wanted, b"refs/heads/" + wanted, wanted + b"^{}", wanted]
    )
    for name in candidates:
        sha = refs.get(name)
        if sha:
            return sha.decode()
    raise SourceError(f"{redact_url(url)}: revision {revision!r} not found (no such branch or tag)")


def _open_or_init(repo_dir: Path) -> Repo:
    if repo_dir.exists():
        try:
            return Repo(str(repo_dir))
        except NotGitRepository:
            pass
    repo_dir.mkdir(parents=True, exist_ok=True)
    return Repo.init_bare(str(repo_dir))


def _has_commit(repo_dir: Path, sha: str) -> bool:
    if not repo_dir.exists():
        return False
    try:
        with Repo(str(repo_dir)) as repo:
            return isinstance(repo[ObjectID(sha.encode())], Commit)
    except (NotGitRepository, KeyError):
        return False


def _fetch_commit(url: str, repo_dir: Path, sha: str) -> None:
    client, path = get_transport_and_path(url)
    with _open_or_init(repo_dir) as repo:
        try:
            client.fetch(path, repo, determine_wants=_want(sha), depth=1)
        except HTTPUnauthorized as exc:
            raise SourceError(f"{redact_url(url)}: authentication refused") from exc
        except _NETWORK_ERRORS as exc:
            raise SourceError(f"{redact_url(url)}: fetch of {sha[:12]} failed: {_reason(exc)}") from exc
        if ObjectID(sha.encode()) not in repo.object_store:
            raise SourceError(f"{redact_url(url)}: the server did not send commit {sha[:12]}")
        repo.refs[Ref(b"refs/gitops-agent/" + sha.encode())] = ObjectID(sha.encode())


def _want(sha: str) -> Any:
    def determine_wants(refs: Mapping[bytes, bytes], depth: int | None = None) -> list[bytes]:
        return [sha.encode()]

    return determine_wants


def _describe(url: str, repo_dir: Path, sha: str, ref: str) -> Revision:
    with Repo(str(repo_dir)) as repo:
        commit = repo[sha.encode()]
        if not isinstance(commit, Commit):
            raise SourceError(f"{redact_url(url)}: {sha[:12]} is not a commit")
        message = commit.message.decode("utf-8", "replace").strip().splitlines()
        return Revision(
            sha=sha,
            ref=ref,
            author=commit.author.decode("utf-8", "replace"),
            message=message[0] if message else "",
            committed_at=float(commit.commit_time),
        )


def _export(url: str, repo_dir: Path, sha: str, path: str, limits: ExportLimits) -> dict[str, bytes]:
    with Repo(str(repo_dir)) as repo:
        exporter = _TreeExporter(repo, url, limits)
        commit = repo[sha.encode()]
        assert isinstance(commit, Commit)
        return exporter.export(commit.tree, path)


class _TreeExporter:
    """Walks a commit's tree below one path, following symlinks only inside the repository."""

    def __init__(self, repo: Repo, url: str, limits: ExportLimits) -> None:
        self.repo, self.url, self.limits = repo, url, limits
        self.files: dict[str, bytes] = {}
        self.total = 0

    def fail(self, path: str, problem: str) -> SourceError:
        return SourceError(f"{redact_url(self.url)}: {path}: {problem}")

    def export(self, root_tree: bytes, path: str) -> dict[str, bytes]:
        self.root_tree = root_tree
        clean = _normalize(path)
        if clean is None:
            raise self.fail(path, "path leaves the repository")
        mode, sha = self.lookup(clean) if clean else (stat.S_IFDIR, root_tree)
        if not stat.S_ISDIR(mode):
            raise self.fail(path, "is not a directory")
        self.walk(sha, clean, "")
        return self.files

    def lookup(self, repo_path: str, depth: int = 0) -> tuple[int, bytes]:
        mode, sha = stat.S_IFDIR, self.root_tree
        walked: list[str] = []
        for part in repo_path.split("/"):
            tree = self.repo[sha]
            if not isinstance(tree, Tree) or part.encode() not in tree:
                raise self.fail(repo_path, "does not exist at this revision")
            mode, sha = tree[part.encode()]
            walked.append(part)
            if stat.S_ISLNK(mode):
                if depth > 20:
                    raise self.fail(repo_path, "too many levels of symbolic links")
                mode, sha = self.lookup(self.link_target("/".join(walked), sha), depth + 1)
        return mode, sha

    def link_target(self, link_path: str, sha: bytes) -> str:
        blob = self.repo[sha]
        assert isinstance(blob, Blob)
        target = blob.data.decode("utf-8", "replace")
        joined = target if target.startswith("/") else posixpath.join(posixpath.dirname(link_path), target)
        clean = None if target.startswith("/") else _normalize(joined)
        if not clean:
            raise self.fail(link_path, f"symbolic link to {target!r} leaves the repository")
        return clean

    def walk(self, tree_sha: bytes, repo_path: str, rel: str) -> None:
        tree = self.repo[tree_sha]
        assert isinstance(tree, Tree)
        for entry in tree.iteritems():
            name = entry.path.decode("utf-8", "replace")
            child_repo = f"{repo_path}/{name}" if repo_path else name
            child_rel = f"{rel}/{name}" if rel else name
            mode, sha = entry.mode, bytes(entry.sha)
            if stat.S_ISLNK(mode):
                mode, sha = self.lookup(self.link_target(child_repo, sha))
            if stat.S_ISDIR(mode):
                self.walk(sha, child_repo, child_rel)
            elif stat.S_ISREG(mode):
                self.add(child_rel, sha)

    def add(self, rel: str, sha: bytes) -> None:
        blob = self.repo[sha]
        assert isinstance(blob, Blob)
        size = len(blob.data)
        if size > self.limits.max_file_bytes:
            raise self.fail(rel, f"file is {size} bytes, over the limit of {self.limits.max_file_bytes}")
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise self.fail(rel, f"files exceed the total limit of {self.limits.max_total_bytes} bytes")
        if len(self.files) >= self.limits.max_files:
            raise self.fail(rel, f"more than {self.limits.max_files} files")
        self.files[rel] = blob.data


def _normalize(path: str) -> str | None:
    """A repository-relative path without `.` or `..`; None if it would leave the repository."""
    if path.startswith("/"):
        return None
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
        else:
            parts.append(part)
    return "/".join(parts)
