"""Safe export of one path of a commit's tree into memory.

Nothing may leave the repository: no `..` out of the root, no absolute paths, no
symbolic link whose target escapes, no link loops. File count, single-file size
and total bytes are capped. Every refusal names the repository and the path.

A tree is content-addressed, so one tree may be named by many entries: forty trees
whose entries `a` and `b` both name the next one hold 2^40 paths. The walk therefore
counts every entry it visits (files, directories and links) against `max_files`, and
stops at a deadline: it runs in a worker thread that cannot be cancelled, under the
repository's read lock, which every fetch of that repository waits for.
"""

from __future__ import annotations

import posixpath
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass

from dulwich.objects import Blob, ShaFile, Tree

from agent.errors import SourceError
from agent.source.urls import redact_url

MAX_LINK_HOPS = 20
MAX_DEPTH = 64


@dataclass(frozen=True)
class ExportLimits:
    """Caps on one export; `[agent]` keys `max_repo_files`, `max_file_size`, `max_repo_size`, and
    `git_timeout` as the longest one walk of a tree may take."""

    max_files: int = 10_000  # entries visited: files, directories and symbolic links
    max_file_bytes: int = 4 * 1024 * 1024
    max_total_bytes: int = 64 * 1024 * 1024
    max_seconds: float = 60.0
    total_key: str = "max_repo_size"  # the setting `max_total_bytes` comes from, for messages


class WalkBudget:
    """Entries visited and time spent by one walk of a tree; `spend` raises past either cap."""

    def __init__(self, limits: ExportLimits, *, fail: Callable[[str, str], Exception],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._limits, self._fail, self._clock = limits, fail, clock
        self._deadline = clock() + limits.max_seconds
        self.entries = 0

    def spend(self, path: str) -> None:
        self.entries += 1
        if self.entries > self._limits.max_files:
            raise self._fail(path, f"more than {self._limits.max_files} files, directories and links "
                                   "(max_repo_files)")
        if self.entries % 256 == 0 and self._clock() > self._deadline:
            raise self._fail(path, f"walking the tree took longer than {self._limits.max_seconds:g}s (git_timeout)")


def normalize_path(path: str) -> str | None:
    """A repository-relative path without `.` or `..`; None if it would leave the repository."""
    if path.startswith("/") or "\\" in path or "\0" in path:
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


ReadObject = Callable[[bytes], ShaFile]


class TreeExporter:
    """Walks a commit's tree below one path, following symlinks only inside the repository.

    `read` returns the object for a SHA (the cache turns corruption into its own error).
    """

    def __init__(self, read: ReadObject, url: str, limits: ExportLimits,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.read, self.url, self.limits = read, url, limits
        self.files: dict[str, bytes] = {}
        self.total = 0
        self.root_tree = b""
        self.budget = WalkBudget(limits, fail=self.fail, clock=clock)

    def fail(self, path: str, problem: str) -> SourceError:
        return SourceError(f"{redact_url(self.url)}: {path or '.'}: {problem}")

    def export(self, root_tree: bytes, path: str) -> dict[str, bytes]:
        self.root_tree = root_tree
        clean = normalize_path(path)
        if clean is None:
            raise self.fail(path, "path leaves the repository")
        mode, sha = self.lookup(clean) if clean else (stat.S_IFDIR, root_tree)
        if not stat.S_ISDIR(mode):
            raise self.fail(path, "is not a directory")
        self.walk(sha, clean, "", (sha,))
        return self.files

    def tree(self, sha: bytes, path: str) -> Tree:
        obj = self.read(sha)
        if not isinstance(obj, Tree):
            raise self.fail(path, "is not a directory")
        return obj

    def lookup(self, repo_path: str, hops: int = 0) -> tuple[int, bytes]:
        """Mode and SHA of a repository path, resolving symlinks on the way."""
        mode, sha = stat.S_IFDIR, self.root_tree
        walked: list[str] = []
        for part in repo_path.split("/") if repo_path else ():
            if not stat.S_ISDIR(mode):
                raise self.fail(repo_path, "does not exist at this revision")
            tree = self.tree(sha, "/".join(walked))
            if part.encode() not in tree:
                raise self.fail(repo_path, "does not exist at this revision")
            mode, sha = tree[part.encode()]
            walked.append(part)
            if stat.S_ISLNK(mode):
                if hops >= MAX_LINK_HOPS:
                    raise self.fail(repo_path, "too many levels of symbolic links")
                mode, sha = self.lookup(self.link_target("/".join(walked), sha), hops + 1)
        return mode, sha

    def link_target(self, link_path: str, sha: bytes) -> str:
        blob = self.read(sha)
        if not isinstance(blob, Blob):
            raise self.fail(link_path, "symbolic link without a target")
        target = blob.data.decode("utf-8", "replace")
        clean = None if target.startswith("/") else normalize_path(posixpath.join(posixpath.dirname(link_path), target))
        if clean is None:
            raise self.fail(link_path, f"symbolic link to {target!r} leaves the repository")
        return clean

    def walk(self, tree_sha: bytes, repo_path: str, rel: str, stack: tuple[bytes, ...]) -> None:
        if len(stack) > MAX_DEPTH:
            raise self.fail(repo_path, f"directories nested deeper than {MAX_DEPTH} levels")
        for entry in self.tree(tree_sha, repo_path).iteritems():
            name = entry.path.decode("utf-8", "replace")
            child_repo = f"{repo_path}/{name}" if repo_path else name
            if name in ("", ".", "..") or "/" in name or "\0" in name:
                raise self.fail(child_repo, "invalid file name in the tree")
            self.budget.spend(child_repo)
            child_rel = f"{rel}/{name}" if rel else name
            mode, sha = entry.mode, bytes(entry.sha)
            if stat.S_ISLNK(mode):
                mode, sha = self.lookup(self.link_target(child_repo, sha))
            if stat.S_ISDIR(mode):
                if sha in stack:
                    raise self.fail(child_repo, "symbolic link loop")
                self.walk(sha, child_repo, child_rel, (*stack, sha))
            elif stat.S_ISREG(mode):
                self.add(child_rel, child_repo, sha)

    def add(self, rel: str, repo_path: str, sha: bytes) -> None:
        """Keep one file under its path relative to the export; errors name its repository path."""
        blob = self.read(sha)
        if not isinstance(blob, Blob):
            raise self.fail(repo_path, "is not a file")
        size = len(blob.data)
        limit = self.limits.max_file_bytes
        if size > limit:
            raise self.fail(repo_path, f"file is {size} bytes, over the limit of {limit} (max_file_size)")
        self.total += size
        if self.total > self.limits.max_total_bytes:
            raise self.fail(repo_path, f"files exceed the total limit of {self.limits.max_total_bytes} bytes "
                                       f"({self.limits.total_key})")
        self.files[rel] = blob.data
