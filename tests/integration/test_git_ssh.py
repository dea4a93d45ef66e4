"""GitSource over SSH against a real sshd on loopback (Debian's openssh-server, run as a child process).

The repositories are the GitServer's bare repositories on disk; sshd's login shell
runs `git-upload-pack` on their absolute path. Never skipped: without sshd the
fixture fails with what to install (scripts/test installs it when run as root).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import SourceError
from agent.metrics import Metrics
from agent.model import RepoSpec
from agent.source import GitSource, redact_url
from tests.support.gitserver import GitServer, WorkTree
from tests.support.sshserver import SSHServer


@pytest.fixture(scope="module")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    server = SSHServer(tmp_path_factory.mktemp("sshd"))
    server.start()
    yield server
    server.stop()


def ssh_source(tmp_path: Path, ssh: SSHServer, *, key: Path | None = None, known_hosts: Path | None = None,
               ignore_host_key: bool = False, metrics: Metrics | None = None) -> GitSource:
    spec = RepoSpec(
        url=f"ssh://{ssh.user}@127.0.0.1:{ssh.port}/",
        ssh_key_file=str(key or ssh.client_key),
        known_hosts_file="" if known_hosts is None else str(known_hosts),
        insecure_ignore_host_key=ignore_host_key,
    )
    return GitSource(tmp_path / "repos", repositories=[spec], observer=metrics)


async def test_ssh_with_a_key_and_a_known_host_key(ssh_server: SSHServer, repo: WorkTree, git_server: GitServer,
                                                   tmp_path: Path) -> None:
    sha = repo.commit_and_push({"app/cm.yaml": "v: 1\n"}, "over ssh")
    repo.tag("v1")
    url = ssh_server.url(git_server.repo_path(repo.name))
    src = ssh_source(tmp_path, ssh_server, known_hosts=ssh_server.known_hosts)

    assert await src.resolve(url, "main") == sha
    assert await src.resolve(url, "v1") == sha
    revision = await src.fetch(url, sha, ref="main")
    assert revision.message == "over ssh"
    assert dict((await src.export(url, revision, "app")).files) == {"cm.yaml": b"v: 1\n"}
    assert git_server.count(repo=repo.name, kind="ls-remote") == 0, "nothing but the pushes went over HTTP"


@pytest.mark.parametrize("known_hosts", ["empty", "other host key"])
async def test_unknown_host_key_is_refused(ssh_server: SSHServer, repo: WorkTree, git_server: GitServer,
                                           tmp_path: Path, known_hosts: str) -> None:
    repo.commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    url = ssh_server.url(git_server.repo_path(repo.name))
    hosts = ssh_server.wrong_known_hosts
    if known_hosts == "empty":
        hosts = tmp_path / "empty_known_hosts"
        hosts.write_text("")
    metrics = Metrics()
    src = ssh_source(tmp_path, ssh_server, known_hosts=hosts, metrics=metrics)

    with pytest.raises(SourceError) as excinfo:
        await src.resolve(url, "main")

    assert str(excinfo.value) == (
        f"{redact_url(url)}: ls-remote failed: host key verification failed: the server's host key is not in the known "
        "hosts (known_hosts_file) or does not match them"
    )
    assert 'request="ls-remote",result="auth_failed"' in metrics.exposition().decode()


async def test_host_key_check_can_be_switched_off_explicitly(ssh_server: SSHServer, repo: WorkTree,
                                                             git_server: GitServer, tmp_path: Path) -> None:
    sha = repo.commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    url = ssh_server.url(git_server.repo_path(repo.name))
    src = ssh_source(tmp_path, ssh_server, known_hosts=ssh_server.wrong_known_hosts, ignore_host_key=True)
    assert await src.resolve(url, "main") == sha


async def test_a_key_the_server_does_not_know_is_refused(ssh_server: SSHServer, repo: WorkTree,
                                                         git_server: GitServer, tmp_path: Path) -> None:
    repo.commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    url = ssh_server.url(git_server.repo_path(repo.name))
    src = ssh_source(tmp_path, ssh_server, key=ssh_server.other_key, known_hosts=ssh_server.known_hosts)

    with pytest.raises(SourceError, match=r"ls-remote failed: .*Permission denied \(publickey\)"):
        await src.resolve(url, "main")


async def test_a_group_readable_key_file_still_works(ssh_server: SSHServer, repo: WorkTree, git_server: GitServer,
                                                     tmp_path: Path) -> None:
    # Kubernetes mounts Secret files 0644 by default; ssh refuses such keys, so the agent copies it 0600.
    sha = repo.commit_and_push({"cm.yaml": "v: 1\n"}, "one")
    key = tmp_path / "mounted" / "id_ed25519"
    key.parent.mkdir()
    shutil.copy(ssh_server.client_key, key)
    key.chmod(0o644)
    src = ssh_source(tmp_path, ssh_server, key=key, known_hosts=ssh_server.known_hosts)
    assert await src.resolve(url := ssh_server.url(git_server.repo_path(repo.name)), "main") == sha
    assert (await src.fetch(url, sha)).sha == sha
