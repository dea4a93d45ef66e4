"""GitSource against the real smart-HTTP git server: revisions, fetch economy, cache, auth, safe export.

How requests are counted: dulwich speaks protocol v2, so every git operation opens
with `GET info/refs` (kind "ls-remote") followed by `POST ls-refs`; a fetch then adds
one or more `POST git-upload-pack` (kind "fetch"). An ls-remote is therefore one
"ls-remote" + one "ls-refs" request, and a fetch operation is one of each plus
"fetch" requests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import SourceError
from agent.metrics import Metrics
from agent.model import RepoSpec
from agent.source import ExportLimits, GitSource, SourceOptions
from tests.support.gitserver import GitServer, WorkTree

USERNAME = "deploy-bot"
PASSWORD = "pw-7d1e-NEVER-SHOWN"


def source(tmp_path: Path, **options: object) -> GitSource:
    return GitSource(tmp_path / "repos", options=SourceOptions(**options))  # type: ignore[arg-type]


async def files_at(src: GitSource, url: str, revision: str, path: str = ".") -> dict[str, bytes]:
    sha = await src.resolve(url, revision)
    described = await src.fetch(url, sha, ref=revision)
    return dict((await src.export(url, described, path)).files)


def fetches(server: GitServer, repo: WorkTree) -> int:
    """Fetch operations: the ls-remote GETs that were followed by a fetch (every fetch has exactly one POST here)."""
    return server.count(repo=repo.name, kind="fetch")


async def test_branch_tag_sha_and_head_revisions(repo: WorkTree, git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.url(repo.name)
    first = repo.commit_and_push({"app/cm.yaml": "v: 1\n"}, "first version\n\nwith a body", )
    repo.tag("v1.0.0", message="release 1")
    repo.tag("light")
    second = repo.commit_and_push({"app/cm.yaml": "v: 2\n"}, "second version")
    repo.checkout_new_branch("feature")
    feature = repo.commit_and_push({"app/cm.yaml": "v: feature\n"}, "feature work")
    src = source(tmp_path)

    assert await src.resolve(url, "main") == second
    assert await src.resolve(url, "HEAD") == second
    assert await src.resolve(url, "feature") == feature
    assert await src.resolve(url, "refs/heads/feature") == feature
    assert await src.resolve(url, "v1.0.0") == first  # annotated tag, peeled
    assert await src.resolve(url, "light") == first
    assert await src.resolve(url, second) == second
    assert await src.resolve(url, second[:7]) == second  # short SHA of a branch tip

    assert (await files_at(src, url, "v1.0.0", "app")) == {"cm.yaml": b"v: 1\n"}
    assert (await files_at(src, url, "feature", "app")) == {"cm.yaml": b"v: feature\n"}
    revision = await src.fetch(url, await src.resolve(url, "main"), ref="main")
    assert (revision.sha, revision.ref, revision.message) == (second, "main", "second version")
    assert revision.author == "Dev <dev@example.com>" and revision.committed_at > 1_600_000_000
    with pytest.raises(SourceError) as excinfo:
        await src.resolve(url, "no-such-branch")
    assert str(excinfo.value) == f"{url}: revision 'no-such-branch' not found (no such branch or tag)"


async def test_short_sha_of_an_old_commit_needs_and_gets_a_full_fetch(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.url(repo.name)
    old = repo.commit_and_push({"cm.yaml": "v: old\n"}, "old")
    repo.commit_and_push({"cm.yaml": "v: new\n"}, "new")
    src = source(tmp_path)
    await files_at(src, url, "main")  # a shallow cache: only the tip
    git_server.reset_counts()

    sha = await src.resolve(url, old[:10])

    assert sha == old
    assert fetches(git_server, repo) == 1
    assert (await files_at(src, url, old[:10])) == {"cm.yaml": b"v: old\n"}
    assert fetches(git_server, repo) == 1, "the old commit is cached now"
    with pytest.raises(SourceError, match="revision 'deadbeef' not found"):
        await src.resolve(url, "deadbeef")


async def test_full_sha_of_an_old_commit_is_fetched_shallow(repo: WorkTree, git_server: GitServer,
                                                            tmp_path: Path) -> None:
    url = git_server.url(repo.name)
    old = repo.commit_and_push({"cm.yaml": "v: old\n"}, "old")
    repo.commit_and_push({"cm.yaml": "v: new\n"}, "new")
    git_server.reset_counts()

    assert (await files_at(source(tmp_path), url, old)) == {"cm.yaml": b"v: old\n"}
    assert git_server.count(repo=repo.name, kind="ls-refs") == 1, "a full SHA needs no ls-remote, only the fetch"


async def test_fetch_happens_only_when_the_sha_moves(repo: WorkTree, git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.url(repo.name)
    repo.commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    src = source(tmp_path, ls_remote_ttl=3600)
    git_server.reset_counts()

    for _ in range(5):
        assert await files_at(src, url, "main") == {"cm.yaml": b"v: 1\n"}
    assert fetches(git_server, repo) == 1
    assert git_server.count(repo=repo.name, kind="ls-remote") == 2  # one ls-remote + the fetch's ref discovery

    repo.commit_and_push({"cm.yaml": "v: 2\n"}, "two")
    assert await files_at(src, url, "main") == {"cm.yaml": b"v: 1\n"}, "within the TTL the old answer stands"
    src.invalidate(url)  # what a webhook or a manual refresh does
    assert await files_at(src, url, "main") == {"cm.yaml": b"v: 2\n"}
    assert fetches(git_server, repo) == 2


async def test_force_push_rewriting_history_is_followed(repo: WorkTree, git_server: GitServer,
                                                        tmp_path: Path) -> None:
    url = git_server.url(repo.name)
    base = repo.commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    repo.commit_and_push({"cm.yaml": "v: 2\n"}, "two")
    src = source(tmp_path, ls_remote_ttl=0.001)
    assert await files_at(src, url, "main") == {"cm.yaml": b"v: 2\n"}

    repo.reset_hard(base)
    repo.write({"cm.yaml": "v: rewritten\n"})
    rewritten = repo.commit("rewritten")
    repo.push(force=True)

    assert await src.resolve(url, "main") == rewritten
    assert await files_at(src, url, "main") == {"cm.yaml": b"v: rewritten\n"}


async def test_cache_is_reused_across_restarts(repo: WorkTree, git_server: GitServer, tmp_path: Path) -> None:
    url = git_server.url(repo.name)
    repo.commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    await files_at(source(tmp_path), url, "main")
    git_server.reset_counts()

    assert await files_at(source(tmp_path), url, "main") == {"cm.yaml": b"v: 1\n"}
    assert fetches(git_server, repo) == 0
    assert git_server.count(repo=repo.name, kind="ls-remote") == 1


def corrupt_packs(repo_dir: Path) -> list[Path]:
    packs = sorted((repo_dir / "objects" / "pack").glob("*.pack"))
    for pack in packs:
        data = bytearray(pack.read_bytes())
        for offset in range(12, len(data) - 20, 7):
            data[offset] ^= 0x5A
        os.chmod(pack, 0o644)
        pack.write_bytes(bytes(data))
    return packs


async def test_corrupt_cache_is_detected_removed_and_fetched_again(
    repo: WorkTree, git_server: GitServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = git_server.url(repo.name)
    repo.commit_and_push({"app/cm.yaml": "v: 1\n"}, "one")
    first = source(tmp_path)
    await files_at(first, url, "main")
    assert corrupt_packs(first.repo_dir(url))
    git_server.reset_counts()

    with caplog.at_level(logging.WARNING, logger="agent.source.cache"):
        restarted = source(tmp_path)
        assert await files_at(restarted, url, "main", "app") == {"cm.yaml": b"v: 1\n"}

    assert fetches(git_server, repo) == 1
    assert any("repository cache is corrupt" in r.getMessage() for r in caplog.records)


async def test_a_cache_directory_that_is_not_a_repository_is_replaced(
    repo: WorkTree, git_server: GitServer, tmp_path: Path
) -> None:
    url = git_server.url(repo.name)
    repo.commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    src = source(tmp_path)
    junk = src.repo_dir(url)
    junk.mkdir(parents=True)
    (junk / "HEAD").write_text("garbage")

    assert await files_at(src, url, "main") == {"cm.yaml": b"v: 1\n"}


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[GitServer]:
    with GitServer(tmp_path / "auth-srv", username=USERNAME, password=PASSWORD) as server:
        yield server


async def test_basic_auth_is_accepted_and_refused_without_showing_the_password(
    auth_server: GitServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth_server.create_repo("private/app")
    WorkTree(auth_server, "private/app", tmp_path / "work").commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    url = auth_server.url("private/app")
    spec = RepoSpec(url=auth_server.base_url + "private/", username=USERNAME, password_env="GIT_TOKEN_UNDER_TEST")
    metrics = Metrics()
    src = GitSource(tmp_path / "repos", repositories=[spec], observer=metrics)

    monkeypatch.setenv("GIT_TOKEN_UNDER_TEST", PASSWORD)
    assert await files_at(src, url, "main") == {"cm.yaml": b"v: 1\n"}

    monkeypatch.setenv("GIT_TOKEN_UNDER_TEST", "wrong-" + PASSWORD)
    src.invalidate(url)
    with pytest.raises(SourceError) as excinfo:
        await src.resolve(url, "main")
    assert str(excinfo.value).startswith(f"{url}: authentication refused")
    assert PASSWORD not in str(excinfo.value)

    without = GitSource(tmp_path / "other", observer=metrics)
    with pytest.raises(SourceError, match="authentication refused"):
        await without.resolve(url, "main")
    inline = f"http://{USERNAME}:wrong-{PASSWORD}@127.0.0.1:{auth_server.port}/private/app.git"
    with pytest.raises(SourceError) as excinfo:
        await without.resolve(inline, "main")
    assert PASSWORD not in str(excinfo.value) and USERNAME not in str(excinfo.value)

    exposition = metrics.exposition().decode()
    assert f'gitops_agent_git_request_total{{repo="{url}",request="ls-remote",result="succeeded"}} 1.0' in exposition
    # The inline URL's credentials do not take part in the label: the same repository, one series.
    assert f'gitops_agent_git_request_total{{repo="{url}",request="ls-remote",result="auth_failed"}} 3.0' in exposition
    assert f'gitops_agent_git_request_total{{repo="{url}",request="fetch",result="succeeded"}} 1.0' in exposition
    assert f'gitops_agent_git_fetch_duration_seconds_count{{repo="{url}"}} 1.0' in exposition
    assert PASSWORD not in exposition


async def test_unreachable_server_names_the_repository(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/nowhere.git"
    with pytest.raises(SourceError) as excinfo:
        await source(tmp_path, timeout=5).resolve(url, "main")
    assert str(excinfo.value).startswith(f"{url}: ls-remote failed:")


async def test_paths_that_leave_the_repository_are_refused(repo: WorkTree, git_server: GitServer,
                                                           tmp_path: Path) -> None:
    url = git_server.url(repo.name)
    repo.write({"app/cm.yaml": "v: 1\n", "shared/common.yaml": "c: 1\n", "secret/s.yaml": "s: 1\n"})
    repo.symlink("app/common.yaml", "../shared/common.yaml")  # inside the repository: followed
    repo.symlink("escape/passwd", "../../etc/passwd")
    repo.symlink("absolute/passwd", "/etc/passwd")
    repo.symlink("loop/again", ".")
    repo.symlink("dirlink", "shared")
    repo.commit("links")
    repo.push()
    src = source(tmp_path)

    assert await files_at(src, url, "main", "app") == {"cm.yaml": b"v: 1\n", "common.yaml": b"c: 1\n"}
    assert await files_at(src, url, "main", "dirlink") == {"common.yaml": b"c: 1\n"}
    for path, problem in [
        ("../outside", "../outside: path leaves the repository"),
        ("/etc", "/etc: path leaves the repository"),
        ("app/../../x", "app/../../x: path leaves the repository"),
        ("escape", "escape/passwd: symbolic link to '../../etc/passwd' leaves the repository"),
        ("absolute", "absolute/passwd: symbolic link to '/etc/passwd' leaves the repository"),
        ("loop", "symbolic link loop"),
        ("missing", "missing: does not exist at this revision"),
    ]:
        with pytest.raises(SourceError) as excinfo:
            await files_at(src, url, "main", path)
        assert str(excinfo.value).startswith(f"{url}: "), excinfo.value
        assert problem in str(excinfo.value)


async def test_oversized_repository_paths_are_refused(repo: WorkTree, git_server: GitServer,
                                                      tmp_path: Path) -> None:
    url = git_server.url(repo.name)
    repo.commit_and_push({
        "big/huge.yaml": "x" * 5000,
        "many/" + "a.yaml": "a\n", "many/b.yaml": "b\n", "many/c.yaml": "c\n",
        "total/one.yaml": "1" * 900, "total/two.yaml": "2" * 900,
    }, "sizes")
    limits = ExportLimits(max_files=2, max_file_bytes=4096, max_total_bytes=1500)
    src = GitSource(tmp_path / "repos", options=SourceOptions(limits=limits))

    with pytest.raises(SourceError, match=r"big/huge\.yaml: file is 5000 bytes, over the limit of 4096"):
        await files_at(src, url, "main", "big")
    with pytest.raises(SourceError, match=r"many/c\.yaml: more than 2 files, directories and links \(max_repo_files\)"):
        await files_at(src, url, "main", "many")
    with pytest.raises(SourceError, match=r"total/two\.yaml: files exceed the total limit of 1500 bytes"):
        await files_at(src, url, "main", "total")


async def test_a_refused_shallow_fetch_falls_back_to_a_full_one(repo: WorkTree, git_server: GitServer,
                                                                tmp_path: Path) -> None:
    # The server refuses `want` of an object it does not have ("not our ref"); the full
    # fetch of every branch and tag that follows cannot find it either, and says so.
    url = git_server.url(repo.name)
    repo.commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    missing = "1234567890" * 4
    git_server.reset_counts()

    with pytest.raises(SourceError) as excinfo:
        await source(tmp_path).fetch(url, missing)

    assert str(excinfo.value) == (f"{url}: commit 123456789012 not found: the server did not send it "
                                  "(it does not exist, or no branch or tag leads to it)")
    assert fetches(git_server, repo) == 2, "a shallow attempt, then a full fetch"
