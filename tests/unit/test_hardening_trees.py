"""Walks of a hostile tree stay bounded: a subtree named by many entries, and a walk that takes too long."""

from __future__ import annotations

import itertools
import stat
from pathlib import Path

import pytest
from dulwich.objects import Blob, Commit, ShaFile, Tree
from dulwich.repo import Repo

from agent.errors import SourceError
from agent.source.cache import RepoHandles
from agent.source.export import ExportLimits, TreeExporter
from agent.source.trees import list_files, read_files, symlink_targets

URL = "https://git.example.com/org/bomb.git"
LEVELS = 40  # 2**40 paths: without a bound, the walk would not end in this century


def shared_subtree_bomb(*, leaf: Tree | None = None) -> tuple[dict[bytes, ShaFile], bytes]:
    """Objects of a tree whose entries `a` and `b` both name the next level, LEVELS deep; and its root."""
    objects: dict[bytes, ShaFile] = {}
    current = leaf or Tree()
    objects[current.id] = current
    for _ in range(LEVELS):
        level = Tree()
        level.add(b"a", stat.S_IFDIR, current.id)
        level.add(b"b", stat.S_IFDIR, current.id)
        objects[level.id] = level
        current = level
    root = Tree()
    root.add(b"bomb", stat.S_IFDIR, current.id)
    objects[root.id] = root
    return objects, root.id


def test_export_of_a_shared_subtree_bomb_stops_at_the_entry_cap() -> None:
    objects, root = shared_subtree_bomb()
    visited = 0

    def read(sha: bytes) -> ShaFile:
        nonlocal visited
        visited += 1
        return objects[sha]

    exporter = TreeExporter(read, URL, ExportLimits(max_files=500))
    with pytest.raises(SourceError, match=r"more than 500 files, directories and links \(max_repo_files\)") as caught:
        exporter.export(root, "bomb")
    assert visited < 1000
    assert str(caught.value).startswith("https://git.example.com/org/bomb.git: bomb/")


def test_export_stops_at_its_deadline() -> None:
    objects, root = shared_subtree_bomb()
    ticks = itertools.count()
    exporter = TreeExporter(objects.__getitem__, URL, ExportLimits(max_files=10**9, max_seconds=5.0),
                            clock=lambda: float(next(ticks)) / 100)  # every reading of the clock: 10 ms later
    with pytest.raises(SourceError, match=r"walking the tree took longer than 5s \(git_timeout\)"):
        exporter.export(root, "bomb")


def test_an_ordinary_tree_is_exported_whole() -> None:
    blob = Blob.from_string(b"kind: ConfigMap\n")
    sub = Tree()
    sub.add(b"cm.yaml", stat.S_IFREG | 0o644, blob.id)
    root = Tree()
    root.add(b"one", stat.S_IFDIR, sub.id)
    root.add(b"two", stat.S_IFDIR, sub.id)  # the same subtree twice is fine while it is small
    objects: dict[bytes, ShaFile] = {o.id: o for o in (blob, sub, root)}
    files = TreeExporter(objects.__getitem__, URL, ExportLimits(max_files=4)).export(root.id, "")
    assert files == {"one/cm.yaml": blob.data, "two/cm.yaml": blob.data}


def test_the_walk_for_symbolic_links_is_bounded_too(tmp_path: Path) -> None:
    objects, root = shared_subtree_bomb()
    repo = Repo.init_bare(str(tmp_path / "r.git"), mkdir=True)
    commit = Commit()
    commit.tree, commit.message = root, b"bomb"
    commit.author = commit.committer = b"Dev <dev@example.com>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    repo.object_store.add_objects([(obj, None) for obj in [*objects.values(), commit]])
    repo.close()
    handles = RepoHandles(tmp_path / "r.git")
    with pytest.raises(SourceError, match=r"more than 300 files, directories and links \(max_repo_files\)"):
        symlink_targets(handles, commit.id.decode(), ["bomb"], url=URL, limits=ExportLimits(max_files=300))
    handles.close()


def committed(tmp_path: Path, objects: dict[bytes, ShaFile], root: bytes) -> tuple[RepoHandles, str]:
    repo = Repo.init_bare(str(tmp_path / "listing.git"), mkdir=True)
    commit = Commit()
    commit.tree, commit.message = root, b"tree"
    commit.author = commit.committer = b"Dev <dev@example.com>"
    commit.author_time = commit.commit_time = 0
    commit.author_timezone = commit.commit_timezone = 0
    repo.object_store.add_objects([(obj, None) for obj in [*objects.values(), commit]])
    repo.close()
    return RepoHandles(tmp_path / "listing.git"), commit.id.decode()


def test_an_application_sets_listing_is_every_file_and_bounded_like_an_export(tmp_path: Path) -> None:
    blob, link = Blob.from_string(b"cluster: {name: dev}\n"), Blob.from_string(b"../../etc/passwd")
    sub = Tree()
    sub.add(b"config.yaml", stat.S_IFREG | 0o644, blob.id)
    sub.add(b"escape", stat.S_IFLNK, link.id)
    root = Tree()
    root.add(b"clusters", stat.S_IFDIR, sub.id)
    handles, sha = committed(tmp_path, {o.id: o for o in (blob, link, sub, root)}, root.id)
    limits = ExportLimits(max_files=10)
    assert list_files(handles, sha, url=URL, limits=limits) == ("clusters/config.yaml", "clusters/escape")
    assert read_files(handles, sha, ["clusters/config.yaml"], url=URL, limits=limits) == {
        "clusters/config.yaml": blob.data}
    with pytest.raises(SourceError, match=r"clusters/absent\.yaml: does not exist at this revision"):
        read_files(handles, sha, ["clusters/absent.yaml"], url=URL, limits=limits)
    with pytest.raises(SourceError, match="leaves the repository"):
        read_files(handles, sha, ["clusters/escape"], url=URL, limits=limits)
    with pytest.raises(SourceError, match=r"over the limit of 4 \(max_file_size\)"):
        read_files(handles, sha, ["clusters/config.yaml"], url=URL, limits=ExportLimits(max_file_bytes=4))
    handles.close()


def test_the_listing_of_a_shared_subtree_bomb_stops_at_the_entry_cap(tmp_path: Path) -> None:
    objects, root = shared_subtree_bomb()
    handles, sha = committed(tmp_path, objects, root)
    with pytest.raises(SourceError, match=r"more than 300 files, directories and links \(max_repo_files\)"):
        list_files(handles, sha, url=URL, limits=ExportLimits(max_files=300))
    handles.close()
