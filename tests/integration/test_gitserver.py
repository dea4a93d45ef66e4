"""The loopback git server (tests/support/gitserver.py) against real clients.

dulwich is what the agent fetches with; the git CLI is what WorkTree pushes
with.  Both must see the same refs and content, through auth, shallow clones,
protocol v2 and force pushes.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from dulwich import porcelain
from dulwich.client import HTTPUnauthorized, get_transport_and_path
from dulwich.errors import NotGitRepository
from dulwich.repo import Repo

from tests.support.gitserver import GitServer, WorkTree, git_env

USERNAME = "alice"
# ':' and '/' must survive URL quoting.  Non-ASCII is left out on purpose:
# dulwich (urllib3) encodes basic-auth credentials as latin-1, git as UTF-8.
PASSWORD = "s3cr:t/pw"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "srv") as git_server:
        yield git_server


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "auth-srv", username=USERNAME, password=PASSWORD) as git_server:
        yield git_server


def _clone(url: str, target: Path, **kwargs: object) -> Repo:
    # dulwich's clone writes progress to stderr unless given an errstream.
    with open(os.devnull, "wb") as devnull:
        return porcelain.clone(url, str(target), errstream=devnull, **kwargs)


def _git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, env=git_env(), capture_output=True, text=True, check=True, timeout=60
    ).stdout


def test_push_is_visible_to_dulwich_ls_remote(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("org/app")
    assert url == f"{server.base_url}org/app.git"
    work = WorkTree(server, "org/app", tmp_path / "work")
    sha = work.commit_and_push({"deploy/app.yaml": "kind: ConfigMap\n"}, "first")
    assert len(sha) == 40
    assert server.count(repo="org/app", kind="push") == 1
    server.reset_counts()

    result = porcelain.ls_remote(url)

    assert result.refs[b"refs/heads/main"] == sha.encode()
    assert result.symrefs[b"HEAD"] == b"refs/heads/main"
    assert server.count(repo="org/app", kind="ls-remote") == 1
    assert server.count(kind="fetch") == 0
    assert server.count(repo="other", kind="ls-remote") == 0
    # dulwich speaks protocol v2 for fetches, so the ref listing itself is a POST.
    assert server.count(repo="org/app", kind="ls-refs") == 1
    assert [r.git_protocol for r in server.requests] == ["version=2", "version=2"]


def test_get_transport_and_path_get_refs(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("app")
    sha = WorkTree(server, "app", tmp_path / "work").commit_and_push({"a.txt": "a\n"}, "first")
    client, path = get_transport_and_path(url)

    result = client.get_refs(path)

    assert result.refs[b"refs/heads/main"] == sha.encode()


def test_empty_repo_lists_unborn_head(server: GitServer) -> None:
    url = server.create_repo("empty")

    result = porcelain.ls_remote(url)

    assert b"refs/heads/main" not in result.refs
    assert result.symrefs[b"HEAD"] == b"refs/heads/main"


def test_dulwich_shallow_clone_has_content_and_no_history(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("app")
    work = WorkTree(server, "app", tmp_path / "work")
    first = work.commit_and_push({"app.yaml": "replicas: 1\n"}, "first")
    second = work.commit_and_push({"app.yaml": "replicas: 2\n", "extra/x.txt": "x\n"}, "second")

    with _clone(url, tmp_path / "shallow", depth=1) as repo:
        assert repo.head() == second.encode()
        assert (tmp_path / "shallow" / "app.yaml").read_text() == "replicas: 2\n"
        assert (tmp_path / "shallow" / "extra" / "x.txt").read_text() == "x\n"
        assert repo.get_shallow() == {second.encode()}
        assert first.encode() not in repo.object_store
    assert server.count(repo="app", kind="fetch") == 1


def test_dulwich_fetch_after_second_commit(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("app")
    work = WorkTree(server, "app", tmp_path / "work")
    first = work.commit_and_push({"app.yaml": "replicas: 1\n"}, "first")
    with _clone(url, tmp_path / "clone") as repo:
        assert repo.head() == first.encode()
    second = work.commit_and_push({"app.yaml": "replicas: 3\n"}, "second")
    server.reset_counts()

    with Repo(str(tmp_path / "clone")) as repo, open(os.devnull, "wb") as devnull:
        result = porcelain.fetch(repo, url, errstream=devnull)
        assert result.refs[b"refs/heads/main"] == second.encode()
        commit = repo[second.encode()]
        assert commit.parents == [first.encode()]
        tree = repo[commit.tree]
        _, blob_id = tree[b"app.yaml"]
        assert repo[blob_id].data == b"replicas: 3\n"
    assert server.count(repo="app", kind="ls-remote") == 1
    assert server.count(repo="app", kind="fetch") == 1


def test_basic_auth_with_credentials_in_url(auth_server: GitServer, tmp_path: Path) -> None:
    auth_server.create_repo("private")
    sha = WorkTree(auth_server, "private", tmp_path / "work").commit_and_push({"a": "1\n"}, "first")
    auth_server.reset_counts()

    result = porcelain.ls_remote(auth_server.url("private", with_credentials=True))

    assert result.refs[b"refs/heads/main"] == sha.encode()
    # dulwich sends credentials from the URL pre-emptively: no 401 round trip.
    assert all(r.status == 200 for r in auth_server.requests)
    assert auth_server.count(repo="private", kind="ls-remote") == 1


def test_basic_auth_with_username_password_arguments(auth_server: GitServer, tmp_path: Path) -> None:
    auth_server.create_repo("private")
    sha = WorkTree(auth_server, "private", tmp_path / "work").commit_and_push({"a": "1\n"}, "first")

    result = porcelain.ls_remote(auth_server.url("private"), username=USERNAME, password=PASSWORD)

    assert result.refs[b"refs/heads/main"] == sha.encode()


def test_missing_credentials_are_rejected_and_recorded(auth_server: GitServer, tmp_path: Path) -> None:
    auth_server.create_repo("private")
    WorkTree(auth_server, "private", tmp_path / "work").commit_and_push({"a": "1\n"}, "first")
    auth_server.reset_counts()

    with pytest.raises(HTTPUnauthorized) as excinfo:
        porcelain.ls_remote(auth_server.url("private"))

    assert excinfo.value.www_authenticate == 'Basic realm="git"'
    assert [(r.status, r.kind, r.repo) for r in auth_server.requests] == [(401, "ls-remote", "private")]
    assert auth_server.count(kind="ls-remote") == 0
    assert auth_server.count(kind="ls-remote", include_unauthorized=True) == 1


def test_wrong_password_is_rejected(auth_server: GitServer, tmp_path: Path) -> None:
    auth_server.create_repo("private")
    url = f"http://{USERNAME}:wrong@127.0.0.1:{auth_server.port}/private.git"

    with pytest.raises(HTTPUnauthorized):
        porcelain.ls_remote(url)
    with pytest.raises(HTTPUnauthorized):
        _clone(url, tmp_path / "never")

    assert {r.status for r in auth_server.requests} == {401}
    assert not (tmp_path / "never").exists()


def test_missing_repo_is_not_a_git_repository(server: GitServer) -> None:
    with pytest.raises(NotGitRepository):
        porcelain.ls_remote(server.url("does-not-exist"))

    assert [r.status for r in server.requests] == [404]


def test_git_cli_ls_remote(auth_server: GitServer, tmp_path: Path) -> None:
    auth_server.create_repo("org/team/app")
    work = WorkTree(auth_server, "org/team/app", tmp_path / "work")
    sha = work.commit_and_push({"a": "1\n"}, "first")
    work.tag("v1.0.0", message="release")

    out = _git("ls-remote", auth_server.url("org/team/app", with_credentials=True))

    refs = {name: value for value, name in (line.split("\t") for line in out.splitlines())}
    assert refs["refs/heads/main"] == sha
    assert refs["refs/tags/v1.0.0^{}"] == sha
    assert refs["refs/tags/v1.0.0"] != sha  # annotated tag object


def test_force_push_is_visible(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("app")
    work = WorkTree(server, "app", tmp_path / "work")
    first = work.commit_and_push({"app.yaml": "v: 1\n"}, "first")
    work.commit_and_push({"app.yaml": "v: 2\n"}, "second")

    work.reset_hard(first)
    work.write({"app.yaml": "v: 2-rewritten\n"})
    rewritten = work.commit("rewritten")
    with pytest.raises(RuntimeError, match="rejected"):
        work.push()
    work.push(force=True)

    assert porcelain.ls_remote(url).refs[b"refs/heads/main"] == rewritten.encode()
    with _clone(url, tmp_path / "clone") as repo:
        assert repo[rewritten.encode()].parents == [first.encode()]
        assert (tmp_path / "clone" / "app.yaml").read_text() == "v: 2-rewritten\n"


def test_worktree_branches_symlinks_and_deletes(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("app")
    work = WorkTree(server, "app", tmp_path / "work")
    work.commit_and_push({"base/a.yaml": "a\n", "base/b.yaml": "b\n"}, "first")
    work.checkout_new_branch("feature")
    work.write({"base/b.yaml": None})
    work.symlink("link.yaml", "base/a.yaml")
    feature = work.commit("feature work")
    work.push(branch="feature")
    with pytest.raises(RuntimeError, match="nothing to commit"):
        work.commit("empty")

    refs = porcelain.ls_remote(url).refs
    assert refs[b"refs/heads/feature"] == feature.encode()
    assert refs[b"refs/heads/main"] != feature.encode()
    with _clone(url, tmp_path / "clone", branch=b"feature") as repo:
        assert repo.head() == feature.encode()
    assert os.readlink(tmp_path / "clone" / "link.yaml") == "base/a.yaml"
    assert not (tmp_path / "clone" / "base" / "b.yaml").exists()


def test_git_cli_chunked_push_and_gzipped_fetch(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("big")
    work = WorkTree(server, "big", tmp_path / "work")
    # A pack over http.postBuffer goes out chunked (after a probe).  git clamps
    # postBuffer to at least 64 KiB; 256 KiB of hex packs to ~128 KiB.
    work.git("config", "http.postBuffer", "65536")
    blob = os.urandom(128 * 1024).hex()
    sha = work.commit_and_push({"blob.txt": blob}, "big")
    [push] = server.records(kind="push")
    assert push.chunked and push.status == 200
    assert server.count(kind="probe") == 1
    # Many refs make the upload-pack request body exceed 1 KiB: git gzips it.
    for i in range(40):
        work.git("branch", f"branch-{i:02d}")
    work.git("push", "--quiet", "origin", "refs/heads/*:refs/heads/*")
    server.reset_counts()

    _git("clone", "--quiet", "--mirror", url, str(tmp_path / "mirror"))

    assert _git("rev-parse", "refs/heads/branch-39", cwd=tmp_path / "mirror").strip() == sha
    assert any(r.content_encoding == "gzip" for r in server.records(kind="fetch"))
    with _clone(url, tmp_path / "dulwich") as repo:
        assert repo.head() == sha.encode()
    assert (tmp_path / "dulwich" / "blob.txt").read_text() == blob
    assert server.backend_errors == []


def test_restart_keeps_port_and_urls(server: GitServer, tmp_path: Path) -> None:
    url = server.create_repo("app")
    sha = WorkTree(server, "app", tmp_path / "work").commit_and_push({"a": "1\n"}, "first")
    porcelain.ls_remote(url)  # leaves a pooled keep-alive connection behind

    server.stop()
    with pytest.raises(Exception, match=r"Connection refused|Max retries"):
        porcelain.ls_remote(url)
    server.start()

    assert server.url("app") == url
    assert porcelain.ls_remote(url).refs[b"refs/heads/main"] == sha.encode()


def test_rejects_bad_repo_names(server: GitServer) -> None:
    for name in ("", "/abs", "a/../b", "x.git", "a//b"):
        with pytest.raises(ValueError):
            server.create_repo(name)
    server.create_repo("dup")
    with pytest.raises(FileExistsError):
        server.create_repo("dup")
    with pytest.raises(ValueError):
        server.count(kind="clone")


def test_delay_holds_requests_and_counts_how_many_overlap(server: GitServer, tmp_path: Path) -> None:
    server.create_repo("slow")
    WorkTree(server, "slow", tmp_path / "work").commit_and_push({"a.txt": "a\n"}, "first")
    server.reset_counts()
    server.delay = 0.2

    def ls_remote() -> None:
        client, path = get_transport_and_path(server.url("slow"))
        client.get_refs(path)

    started = time.monotonic()
    ls_remote()
    assert time.monotonic() - started >= 0.2
    assert server.max_concurrent == 1
    threads = [threading.Thread(target=ls_remote) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert server.max_concurrent == 3
    server.reset_counts()
    assert server.max_concurrent == 0
