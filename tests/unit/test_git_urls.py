"""Pure parts of the git source: URL redaction and normalization, revisions against refs, push refs."""

from __future__ import annotations

import pytest

from agent.source.cache import cache_dir_name
from agent.source.export import normalize_path
from agent.source.resolver import match_revision, tips_with_prefix
from agent.source.urls import normalize_url, push_matches_revision, redact_url, scp_like


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:s3cret@git.example.com/org/repo.git", "https://git.example.com/org/repo.git"),
        ("https://token@git.example.com/org/repo.git", "https://git.example.com/org/repo.git"),
        ("https://git.example.com/org/repo.git", "https://git.example.com/org/repo.git"),
        ("git@github.com:org/repo.git", "github.com:org/repo.git"),
        ("/srv/git/repo", "/srv/git/repo"),
    ],
)
def test_redact_url_drops_all_user_information(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Org/Repo.git",
        "https://github.com/org/repo",
        "https://github.com/org/repo/",
        "http://github.com:80/org/repo.git",
        "https://deploy:token@github.com/org/repo.git",
        "git@github.com:org/repo.git",
        "ssh://git@github.com/org/repo",
        "ssh://git@github.com:22/org/repo.git",
        "git://github.com/org/repo.git",
    ],
)
def test_normalize_url_makes_every_spelling_of_a_repository_equal(url: str) -> None:
    assert normalize_url(url) == "github.com/org/repo"


def test_normalize_url_keeps_a_non_default_port_and_tells_repositories_apart() -> None:
    assert normalize_url("ssh://git@host:2222/org/repo.git") == "host:2222/org/repo"
    assert normalize_url("https://host/org/repo") != normalize_url("https://host/org/repo-legacy")
    assert normalize_url("https://host/org/repo") != normalize_url("https://other/org/repo")


def test_scp_like_is_only_user_host_colon_path() -> None:
    assert scp_like("git@github.com:org/repo.git") == ("git", "github.com", "org/repo.git")
    assert scp_like("github.com:org/repo") == ("", "github.com", "org/repo")
    assert scp_like("https://github.com/org/repo") is None
    assert scp_like("/srv/git/repo") is None


@pytest.mark.parametrize(
    ("pushed", "revision", "matches"),
    [
        ("refs/heads/main", "main", True),
        ("refs/heads/main", "refs/heads/main", True),
        ("refs/heads/main", "HEAD", True),
        ("refs/heads/main", "develop", False),
        ("refs/heads/main", "v1.0.0", False),
        ("refs/tags/v1.0.0", "v1.0.0", True),
        ("refs/tags/v1.0.0", "HEAD", False),
        ("refs/tags/v1.0.0", "main", False),
        ("refs/heads/main", "0123456789abcdef0123456789abcdef01234567", False),
        ("main", "main", True),
        ("", "anything", True),
    ],
)
def test_push_matches_revision(pushed: str, revision: str, matches: bool) -> None:
    assert push_matches_revision(pushed, revision) is matches


REFS = {
    b"HEAD": b"a" * 40,
    b"refs/heads/main": b"a" * 40,
    b"refs/heads/v2": b"b" * 40,
    b"refs/tags/v2": b"c" * 40,
    b"refs/tags/v1": b"d" * 40,
    b"refs/tags/v1^{}": b"e" * 40,
}


@pytest.mark.parametrize(
    ("revision", "sha"),
    [
        ("HEAD", "a" * 40),
        ("main", "a" * 40),
        ("refs/heads/main", "a" * 40),
        ("v1", "e" * 40),  # an annotated tag is peeled to its commit
        ("refs/tags/v1", "e" * 40),
        ("v2", "c" * 40),  # a tag wins over a branch of the same name, as in git
        ("refs/heads/v2", "b" * 40),
        ("nope", None),
    ],
)
def test_match_revision(revision: str, sha: str | None) -> None:
    assert match_revision(REFS, revision) == sha


def test_tips_with_prefix_peels_tags() -> None:
    assert tips_with_prefix(REFS, "eeee") == {"e" * 40}
    assert tips_with_prefix(REFS, "aaaa") == {"a" * 40}
    assert tips_with_prefix(REFS, "ffff") == set()


@pytest.mark.parametrize(
    ("path", "expected"),
    [(".", ""), ("", ""), ("apps/x/../y", "apps/y"), ("./a//b/", "a/b"), ("..", None), ("a/../..", None),
     ("/etc", None), ("a\\..\\b", None)],
)
def test_normalize_path_refuses_leaving_the_repository(path: str, expected: str | None) -> None:
    assert normalize_path(path) == expected


def test_cache_dir_name_is_stable_readable_and_ignores_credentials() -> None:
    plain = cache_dir_name("https://git.example.com/payments/gitops.git")
    assert plain.startswith("payments-gitops-") and plain.endswith(".git")
    assert cache_dir_name("https://bot:secret@git.example.com/payments/gitops.git") == plain
    assert "secret" not in cache_dir_name("https://bot:secret@git.example.com/payments/gitops.git")
    assert cache_dir_name("https://git.example.com/payments/other.git") != plain
