"""Object ids of paths at a commit, for the render cache (issue 5); a commit's file listing and some
of its files, for ApplicationSet git generators.

The render cache keys an app's output by the git object ids of the directories its
render reads: the same tree SHA means the same files. Symbolic links are the one
hole in that: a tree holds a link's target *path*, not the target's content, so the
renderer also asks for the targets of every link below its inputs and keys on them too.

Blocking functions (dulwich); GitSource runs them in a worker thread under the
repository's read lock, on a borrowed handle. Nothing here raises for a path that is absent or leaves the
repository: that is an answer (None, or no target), and the export that follows
reports it properly. The walk below a path is bounded like the export's (entries
visited and time, see export.WalkBudget): a subtree named by many entries must not
keep the worker thread, and the repository's read lock, for hours.
"""

from __future__ import annotations

import posixpath
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from dulwich.objects import Blob, Commit, Tree

from agent.errors import SourceError
from agent.source.cache import CacheCorrupt, RepoHandles, peel
from agent.source.export import (
    MAX_DEPTH,
    MAX_LINK_HOPS,
    ExportLimits,
    ReadObject,
    TreeExporter,
    WalkBudget,
    normalize_path,
)
from agent.source.urls import redact_url


@dataclass(frozen=True)
class TreeEntry:
    """What a path names at one commit: a directory (its git tree SHA) or a file (its blob SHA)."""

    sha: str
    is_dir: bool


def tree_entries(handles: RepoHandles, commit_sha: str, paths: Sequence[str]) -> dict[str, TreeEntry | None]:
    """Each path's entry at the commit, following symlinks inside the repository; None when absent."""
    with handles.borrow() as read:
        walker = _Walker(read, commit_sha)
        return {path: walker.entry(path) for path in paths}


def symlink_targets(handles: RepoHandles, commit_sha: str, paths: Sequence[str], *, url: str,
                    limits: ExportLimits) -> tuple[str, ...]:
    """Repository paths that symbolic links below `paths` point to (links leaving the repository are left out).

    SourceError when the walk visits more entries than `limits` allow, or takes too long.
    """
    with handles.borrow() as read:
        walker = _Walker(read, commit_sha)

        def fail(path: str, problem: str) -> SourceError:
            return SourceError(f"{redact_url(url)}: {path or '.'}: {problem}")

        budget = WalkBudget(limits, fail=fail)
        found: set[str] = set()
        for path in paths:
            found.update(walker.links_below(path, budget))
        return tuple(sorted(found))


class _Walker:
    def __init__(self, read: ReadObject, commit_sha: str) -> None:
        self.read = read
        commit = peel(read, commit_sha.encode())
        if not isinstance(commit, Commit):
            raise CacheCorrupt(f"{commit_sha[:12]} is not a commit")
        self.root = commit.tree

    def entry(self, path: str) -> TreeEntry | None:
        found = self.lookup(path)
        if found is None:
            return None
        mode, sha = found
        return TreeEntry(sha=sha.decode(), is_dir=stat.S_ISDIR(mode))

    def lookup(self, path: str, hops: int = 0) -> tuple[int, bytes] | None:
        clean = normalize_path(path)
        if clean is None:
            return None
        mode, sha = stat.S_IFDIR, self.root
        walked: list[str] = []
        for part in clean.split("/") if clean else ():
            tree = self.read(sha) if stat.S_ISDIR(mode) else None
            if not isinstance(tree, Tree) or part.encode() not in tree:
                return None
            mode, sha = tree[part.encode()]
            walked.append(part)
            if stat.S_ISLNK(mode):
                target = self.link_target("/".join(walked), sha)
                if target is None or hops >= MAX_LINK_HOPS:
                    return None
                found = self.lookup(target, hops + 1)
                if found is None:
                    return None
                mode, sha = found
        return mode, sha

    def link_target(self, link_path: str, sha: bytes) -> str | None:
        blob = self.read(sha)
        if not isinstance(blob, Blob):
            return None
        target = blob.data.decode("utf-8", "replace")
        if target.startswith("/"):
            return None
        return normalize_path(posixpath.join(posixpath.dirname(link_path), target))

    def links_below(self, path: str, budget: WalkBudget) -> set[str]:
        found = self.lookup(path)
        if found is None or not stat.S_ISDIR(found[0]):
            return set()
        targets: set[str] = set()
        pending = [(normalize_path(path) or "", found[1], 0)]
        while pending:
            repo_path, tree_sha, depth = pending.pop()
            tree = self.read(tree_sha)
            if not isinstance(tree, Tree) or depth > MAX_DEPTH:
                continue
            for entry in tree.iteritems():
                child = posixpath.join(repo_path, entry.path.decode("utf-8", "replace"))
                budget.spend(child)
                if stat.S_ISLNK(entry.mode):
                    target = self.link_target(child, bytes(entry.sha))
                    if target is not None:
                        targets.add(target)
                elif stat.S_ISDIR(entry.mode):
                    pending.append((child, bytes(entry.sha), depth + 1))
        return targets


def list_files(handles: RepoHandles, commit_sha: str, *, url: str, limits: ExportLimits) -> tuple[str, ...]:
    """Every file path at the commit, from the repository's root, as `git ls-files` lists them (a symbolic
    link is listed, not followed). ApplicationSet git generators match their paths against these.

    SourceError when the walk visits more entries than `limits` allow, or takes too long.
    """
    with handles.borrow() as read:
        commit = peel(read, commit_sha.encode())
        if not isinstance(commit, Commit):
            raise CacheCorrupt(f"{commit_sha[:12]} is not a commit")

        def fail(path: str, problem: str) -> SourceError:
            return SourceError(f"{redact_url(url)}: {path or '.'}: {problem}")

        budget = WalkBudget(limits, fail=fail)
        found: list[str] = []
        pending = [("", commit.tree, 0)]
        while pending:
            repo_path, tree_sha, depth = pending.pop()
            tree = read(tree_sha)
            if not isinstance(tree, Tree) or depth > MAX_DEPTH:
                continue
            for entry in tree.iteritems():
                name = entry.path.decode("utf-8", "replace")
                if name in ("", ".", "..") or "/" in name:
                    continue
                child = posixpath.join(repo_path, name) if repo_path else name
                budget.spend(child)
                if stat.S_ISDIR(entry.mode):
                    pending.append((child, bytes(entry.sha), depth + 1))
                elif stat.S_ISREG(entry.mode) or stat.S_ISLNK(entry.mode):
                    found.append(child)
        return tuple(sorted(found))


def read_files(handles: RepoHandles, commit_sha: str, paths: Sequence[str], *, url: str,
               limits: ExportLimits) -> dict[str, bytes]:
    """The contents of files at the commit, by repository path; links followed inside the repository,
    sizes capped as an export's are. SourceError for a path that is absent or leaves the repository."""
    with handles.borrow() as read:
        commit = peel(read, commit_sha.encode())
        if not isinstance(commit, Commit):
            raise CacheCorrupt(f"{commit_sha[:12]} is not a commit")
        exporter = TreeExporter(read, url, limits)
        exporter.root_tree = commit.tree
        for path in paths:
            clean = normalize_path(path)
            if clean is None:
                raise exporter.fail(path, "path leaves the repository")
            mode, sha = exporter.lookup(clean)
            if stat.S_ISREG(mode):
                exporter.add(clean, clean, sha)
        return exporter.files
