"""The on-disk cache: one bare repository per URL under `state_dir/repos/`, reused across restarts.

Blocking functions (dulwich); callers run them in a worker thread. A cache that
cannot be read (truncated pack, bad checksum, missing object, broken config) raises
`CacheCorrupt`; the caller removes it and fetches again.
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import stat
import struct
import threading
import weakref
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from dulwich.client import GitClient
from dulwich.errors import (
    ApplyDeltaError,
    ChecksumMismatch,
    FileFormatException,
    NotGitRepository,
    ObjectMissing,
    WrongObjectException,
)
from dulwich.objects import Blob, Commit, ObjectID, ShaFile, Tag
from dulwich.refs import Ref
from dulwich.repo import Repo

from agent.model import Revision
from agent.source.export import ExportLimits, ReadObject, TreeExporter
from agent.source.transport import NETWORK_ERRORS
from agent.source.urls import redact_url, scp_like, strip_userinfo

log = logging.getLogger(__name__)

AGENT_REFS = b"refs/gitops-agent/"
KEEP_REFS = 32
# Every fetch adds a pack; past this many, start the repository afresh rather than
# repack (dulwich's repack holds every object in memory).
MAX_PACKS = 64
UNSHALLOW_DEPTH = 2**31 - 1  # what `git fetch --unshallow` sends
# Reads of one repository at once (agent.source.ondisk), each on a handle of its own. Exports
# hold the interpreter's lock most of the time, so more readers buy no speed, only memory: a
# handle maps the pack and its index and keeps a cache of the delta bases it resolved.
READERS = 2
DELTA_BASE_CACHE = 8 * 1024 * 1024  # bytes per handle

# What reading a damaged repository raises: dulwich's own errors, the decoders it uses on pack
# and object data, and the filesystem's. Not KeyError, ValueError, AssertionError or IndexError:
# a bug of ours must not be taken for corruption (and cost a removal and a full fetch). A missing
# object is dulwich's KeyError at the one place objects are looked up (`Reader`).
CORRUPTION_ERRORS = (
    ChecksumMismatch, ApplyDeltaError, FileFormatException, NotGitRepository, ObjectMissing, WrongObjectException,
    zlib.error, struct.error, OSError,
)


class CacheCorrupt(Exception):
    """The cached repository cannot be read; remove it and fetch again."""


def cache_dir_name(url: str) -> str:
    """A stable, readable directory name for a URL (credentials do not take part)."""
    bare = strip_userinfo(url)
    scp = scp_like(bare)
    path = scp[2] if scp else urlsplit(bare).path or bare
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", path.strip("/")).strip("-")[-60:] or "repo"
    digest = hashlib.sha256(bare.encode()).hexdigest()[:12]
    return f"{name.removesuffix('.git')}-{digest}.git"


@contextmanager
def open_repo(repo_dir: Path) -> Iterator[Repo]:
    """The cached repository, created when absent; CacheCorrupt when it cannot be opened."""
    repo = _open(repo_dir)
    try:
        yield repo
    finally:
        repo.close()


def _open(repo_dir: Path) -> Repo:
    if not repo_dir.exists():
        repo_dir.parent.mkdir(mode=0o700, parents=True, exist_ok=True)  # `repos/`: every tenant's cache
        repo_dir.mkdir(mode=0o700)
        Repo.init_bare(str(repo_dir)).close()
    try:
        repo = Repo(str(repo_dir))
    except CORRUPTION_ERRORS as exc:
        raise CacheCorrupt(f"cannot open: {_reason(exc)}") from exc
    # Read when its packs are first opened: dulwich's default (Git's 96 MiB) is per handle, and a
    # repository of ten thousand similar apps fills it, once for every handle.
    repo.object_store.delta_base_cache_limit = DELTA_BASE_CACHE
    return repo


class Reader:
    """One borrowed repository handle: `reader(sha)` is the object, corruption raised as CacheCorrupt."""

    def __init__(self, repo: Repo, parsed: _ParsedObjects | None = None) -> None:
        self.repo = repo
        self._parsed = parsed

    def __call__(self, sha: bytes) -> ShaFile:
        found = self._parsed.get(sha) if self._parsed is not None else None
        if found is not None:
            return found
        try:
            obj = self.repo[ObjectID(sha)]
        except KeyError as exc:  # dulwich: no such object in any pack or loose file
            raise CacheCorrupt(f"object {sha[:12].decode(errors='replace')} is missing") from exc
        except CORRUPTION_ERRORS as exc:
            raise CacheCorrupt(f"object {sha[:12].decode(errors='replace')}: {_reason(exc)}") from exc
        if self._parsed is not None and not isinstance(obj, Blob):
            self._parsed.put(sha, obj)  # trees, commits and tags are read again and again; file contents are not
        return obj


class _ParsedObjects:
    """Parsed trees and commits by SHA, shared by every reader of a cache. An object's SHA is its
    content, so an entry never goes stale; the oldest go first past `limit`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._objects: dict[bytes, ShaFile] = {}
        self._lock = threading.Lock()

    def get(self, sha: bytes) -> ShaFile | None:
        return self._objects.get(sha)

    def put(self, sha: bytes, obj: ShaFile) -> None:
        with self._lock:
            self._objects[sha] = obj
            while len(self._objects) > self._limit:
                del self._objects[next(iter(self._objects))]

    def clear(self) -> None:
        with self._lock:
            self._objects.clear()


class RepoHandles:
    """Open handles on one cache directory, lent to one reader thread at a time and kept for the next.

    Opening a dulwich repository (its config, its pack indexes) costs more than most reads,
    and every app reads the same repository several times per render. Writers (fetch, pin,
    removal) run alone under the caller's write lock and call `close` afterwards: a kept
    handle knows nothing of packs added or files removed since it was opened.
    """

    MAX_IDLE = READERS  # handles kept for the next reader
    MAX_PARSED = 4096  # trees and commits

    def __init__(self, repo_dir: Path) -> None:
        self.path = repo_dir
        self._idle: list[Repo] = []
        self._lock = threading.Lock()
        self._parsed = _ParsedObjects(self.MAX_PARSED)
        # Closed when this object goes, or at interpreter exit, whichever comes first.
        weakref.finalize(self, _close_all, self._idle)

    @contextmanager
    def borrow(self) -> Iterator[Reader]:
        """A handle of our own for the length of the block (opened now when none is idle)."""
        with self._lock:
            repo = self._idle.pop() if self._idle else None
        if repo is None:
            repo = _open(self.path)
        try:
            yield Reader(repo, self._parsed)
        except BaseException:
            repo.close()  # it may be what failed: do not lend it again
            raise
        with self._lock:
            kept = len(self._idle) < self.MAX_IDLE
            if kept:
                self._idle.append(repo)
        if not kept:
            repo.close()

    def close(self, *, forget_objects: bool = False) -> None:
        """Close the idle handles (after a write); `forget_objects` also drops the parsed objects."""
        with self._lock:
            idle = self._idle[:]
            self._idle.clear()  # the same list: the finalizer holds it
        _close_all(idle)
        if forget_objects:
            self._parsed.clear()


def _close_all(repos: list[Repo]) -> None:
    for repo in repos:
        repo.close()


def remove(repo_dir: Path) -> None:
    shutil.rmtree(repo_dir, ignore_errors=True)


def verify(repo_dir: Path) -> None:
    """Check every pack's checksums and that each commit the agent keeps is readable."""
    if not repo_dir.exists():
        return
    with open_repo(repo_dir) as repo:
        try:
            for pack in repo.object_store.packs:
                pack.index.check()
                pack.data.check()
                pack.check_length_and_checksum()
            read = Reader(repo)
            for name, sha in repo.refs.as_dict(Ref(AGENT_REFS)).items():
                commit = read(sha)
                if not isinstance(commit, Commit):
                    raise CacheCorrupt(f"{AGENT_REFS.decode()}{name.decode()} is not a commit")
                read(commit.tree)
        except CORRUPTION_ERRORS as exc:
            raise CacheCorrupt(_reason(exc)) from exc


def has_commit(handles: RepoHandles, sha: str) -> bool:
    if not handles.path.exists():
        return False
    with handles.borrow() as read:
        oid = ObjectID(sha.encode())
        try:
            if oid not in read.repo.object_store:
                return False
        except CORRUPTION_ERRORS as exc:
            raise CacheCorrupt(_reason(exc)) from exc
        return isinstance(peel(read, oid), Commit)


def too_many_packs(repo_dir: Path) -> bool:
    pack_dir = repo_dir / "objects" / "pack"
    return pack_dir.is_dir() and sum(1 for _ in pack_dir.glob("*.pack")) > MAX_PACKS


def fetch(client: GitClient, path: str, repo_dir: Path, wants: list[str], *, depth: int | None) -> None:
    """Fetch `wants` (SHAs; empty: every branch and tag) at `depth` into the cache."""
    with open_repo(repo_dir) as repo:
        def determine_wants(refs: Mapping[Ref, ObjectID], depth: int | None = None) -> list[ObjectID]:
            if wants:
                return [ObjectID(sha.encode()) for sha in wants]
            tips = {sha for name, sha in refs.items() if name.startswith((b"refs/heads/", b"refs/tags/"))
                    and not name.endswith(b"^{}")}
            if repo.get_shallow():  # deepening: ask for tips we hold too, as `git fetch --unshallow` does
                return sorted(tips)
            return sorted(sha for sha in tips if sha not in repo.object_store)

        try:
            client.fetch(path, repo, determine_wants=determine_wants, depth=depth)
        except NETWORK_ERRORS:
            raise
        except CORRUPTION_ERRORS as exc:
            raise CacheCorrupt(f"while fetching: {_reason(exc)}") from exc
    _private_packs(repo_dir)


def _private_packs(repo_dir: Path) -> None:
    """dulwich makes pack files 0444 whatever the umask; the cache holds other tenants' files: 0400."""
    pack_dir = repo_dir / "objects" / "pack"
    for path in pack_dir.iterdir() if pack_dir.is_dir() else ():
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            path.chmod(mode & 0o700)


def keep(repo_dir: Path, sha: str) -> bool:
    """Pin a fetched commit under refs/gitops-agent/ (its objects serve as `have`s next time).

    Returns False when the commit is not there. Only the newest KEEP_REFS pins are kept.
    """
    with open_repo(repo_dir) as repo:
        oid = ObjectID(sha.encode())
        read = Reader(repo)
        try:
            target = peel(read, oid) if oid in repo.object_store else None
            if not isinstance(target, Commit):
                return False
            repo.refs[Ref(AGENT_REFS + target.id)] = target.id
            pinned = sorted(
                ((_commit_time(read(value)), name) for name, value in repo.refs.as_dict(Ref(AGENT_REFS)).items()),
                reverse=True,
            )
        except CORRUPTION_ERRORS as exc:
            raise CacheCorrupt(_reason(exc)) from exc
        for _, name in pinned[KEEP_REFS:]:
            del repo.refs[Ref(AGENT_REFS + name)]
        return True


def describe(handles: RepoHandles, sha: str, ref: str) -> Revision:
    """The commit `sha` names (a tag is peeled) with its audit metadata."""
    with handles.borrow() as read:
        commit = peel(read, ObjectID(sha.encode()))
        if not isinstance(commit, Commit):
            raise CacheCorrupt(f"{sha[:12]} is not a commit")
        lines = commit.message.decode("utf-8", "replace").strip().splitlines()
        return Revision(
            sha=commit.id.decode(),
            ref=ref,
            author=commit.author.decode("utf-8", "replace"),
            message=lines[0] if lines else "",
            committed_at=float(commit.commit_time),
        )


def commits_with_prefix(handles: RepoHandles, prefix: str) -> list[str]:
    """Full SHAs of cached commits starting with `prefix` (a short SHA)."""
    if not handles.path.exists():
        return []
    with handles.borrow() as read:
        try:
            candidates = list(read.repo.object_store.iter_prefix(prefix.encode()))
        except CORRUPTION_ERRORS as exc:
            raise CacheCorrupt(_reason(exc)) from exc
        return sorted({sha.decode() for sha in candidates if isinstance(read(sha), Commit)})


def export(handles: RepoHandles, url: str, sha: str, path: str, limits: ExportLimits) -> dict[str, bytes]:
    """The files under `path` at commit `sha` (see TreeExporter for what is refused)."""
    with handles.borrow() as read:
        commit = peel(read, sha.encode())
        if not isinstance(commit, Commit):
            raise CacheCorrupt(f"{sha[:12]} is not a commit")
        return TreeExporter(read, url, limits).export(commit.tree, path)


def reaches(handles: RepoHandles, tip: str, target: str, *, limit: int = 100_000) -> bool | None:
    """Whether commit `target` is `tip` or one of its ancestors in the cache: True or False, or None
    when the walk met the edge of a shallow history (or `limit` commits) without finding it."""
    with handles.borrow() as read:
        try:
            shallow = read.repo.get_shallow()
        except CORRUPTION_ERRORS as exc:
            raise CacheCorrupt(_reason(exc)) from exc
        wanted, pending, seen = target.encode(), [tip.encode()], set()
        complete = True
        while pending:
            sha = pending.pop()
            if sha == wanted:
                return True
            if sha in seen:
                continue
            seen.add(sha)
            commit = peel(read, sha)
            if len(seen) > limit or not isinstance(commit, Commit):
                return None
            if sha in shallow:  # its parents were never fetched
                complete = False
                continue
            pending.extend(commit.parents)
        return False if complete else None


def peel(read: ReadObject, oid: bytes) -> ShaFile:
    """The object `oid` names, through up to ten annotated tags."""
    obj = read(oid)
    for _ in range(10):
        if not isinstance(obj, Tag):
            break
        obj = read(obj.object[1])
    return obj


def _commit_time(obj: ShaFile) -> int:
    return obj.commit_time if isinstance(obj, Commit) else 0


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def log_removal(url: str, repo_dir: Path, problem: str) -> None:
    log.warning("repository cache is corrupt; removing it and fetching again",
                extra={"repo": redact_url(url), "error": f"{repo_dir.name}: {problem}"})

