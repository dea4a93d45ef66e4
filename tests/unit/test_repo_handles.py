"""RepoHandles: open repositories are lent one reader at a time, reused, and dropped after writes;
what the source remembers of commits stays bounded."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich.objects import Blob, Tree
from dulwich.repo import Repo

from agent.model import Revision
from agent.source.cache import CacheCorrupt, RepoHandles
from agent.source.ondisk import RECENT_COMMITS, OnDisk


def _repo_with_tree(path: Path) -> tuple[bytes, bytes]:
    repo = Repo.init_bare(str(path), mkdir=True)
    blob = Blob.from_string(b"kind: ConfigMap\n")
    tree = Tree()
    tree.add(b"cm.yaml", 0o100644, blob.id)
    repo.object_store.add_objects([(blob, None), (tree, None)])
    repo.close()
    return tree.id, blob.id


def test_a_returned_handle_is_lent_again(tmp_path: Path) -> None:
    handles = RepoHandles(tmp_path / "r.git")
    _repo_with_tree(handles.path)
    with handles.borrow() as first:
        pass
    with handles.borrow() as second:
        assert second.repo is first.repo


def test_readers_at_once_get_handles_of_their_own(tmp_path: Path) -> None:
    handles = RepoHandles(tmp_path / "r.git")
    _repo_with_tree(handles.path)
    with handles.borrow() as first, handles.borrow() as second:
        assert first.repo is not second.repo


def test_close_drops_idle_handles_and_a_failed_reader_is_not_lent_again(tmp_path: Path) -> None:
    handles = RepoHandles(tmp_path / "r.git")
    tree_id, _ = _repo_with_tree(handles.path)
    with handles.borrow() as first:
        pass
    handles.close()
    with handles.borrow() as after_close:
        assert after_close.repo is not first.repo
    with pytest.raises(CacheCorrupt), handles.borrow() as failing:
        failing(b"0" * 40)  # no such object
    with handles.borrow() as after_failure:
        assert after_failure.repo is not failing.repo
        assert isinstance(after_failure(tree_id), Tree)


def test_trees_are_parsed_once_and_shared_blobs_are_not_kept(tmp_path: Path) -> None:
    handles = RepoHandles(tmp_path / "r.git")
    tree_id, blob_id = _repo_with_tree(handles.path)
    with handles.borrow() as first, handles.borrow() as second:
        parsed = first(tree_id)
        assert second(tree_id) is parsed
        assert first(blob_id) is not second(blob_id)
        assert first(blob_id).as_raw_string() == b"kind: ConfigMap\n"
    handles.close(forget_objects=True)
    with handles.borrow() as third:
        assert third(tree_id) is not parsed
        assert third(tree_id) == parsed


def test_remembered_commits_stay_bounded(tmp_path: Path) -> None:
    disk = OnDisk(RepoHandles(tmp_path / "r.git"))
    for number in range(RECENT_COMMITS * 3):
        sha = f"{number:040x}"
        disk.know(sha, Revision(sha=sha, ref=""))
        assert sha in disk.commits and sha in disk.described
        assert len(disk.commits) <= RECENT_COMMITS and len(disk.described) <= RECENT_COMMITS
