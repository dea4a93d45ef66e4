"""Webhook pure parts: provider detection, signature checks, payload parsing per provider."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from agent.server.webhook import WebhookError, detect_provider, parse_payload, parse_push, signature_valid

SECRET = "hook-secret"
BODY = b'{"ref": "refs/heads/main"}'
DIGEST = hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("headers", "provider"),
    [
        ({"X-GitHub-Event": "push"}, "github"),
        ({"X-GitHub-Event": "push", "X-Gitea-Event": "push"}, "gitea"),
        ({"X-Gitlab-Event": "Push Hook"}, "gitlab"),
        ({"X-Event-Key": "repo:push"}, "bitbucket"),
        ({"X-Gitops-Token": "x"}, "generic"),
        ({}, "generic"),
    ],
)
def test_detect_provider(headers: dict[str, str], provider: str) -> None:
    assert detect_provider(headers) == provider


@pytest.mark.parametrize(
    ("provider", "good", "bad"),
    [
        ("github", {"X-Hub-Signature-256": f"sha256={DIGEST}"}, {"X-Hub-Signature-256": f"sha256={'0' * 64}"}),
        ("gitea", {"X-Gitea-Signature": DIGEST}, {"X-Gitea-Signature": DIGEST[:-1] + "0"}),
        ("bitbucket", {"X-Hub-Signature": f"sha256={DIGEST}"}, {"X-Hub-Signature": DIGEST}),
        ("gitlab", {"X-Gitlab-Token": SECRET}, {"X-Gitlab-Token": SECRET + "x"}),
        ("generic", {"X-Gitops-Token": SECRET}, {"X-Gitops-Token": ""}),
    ],
)
def test_signature_valid_accepts_the_right_proof_only(provider: str, good: dict[str, str],
                                                      bad: dict[str, str]) -> None:
    assert signature_valid(provider, good, BODY, SECRET)
    assert not signature_valid(provider, bad, BODY, SECRET)
    assert not signature_valid(provider, {}, BODY, SECRET)
    assert not signature_valid(provider, good, BODY, "other-secret")


def test_github_signature_covers_the_body() -> None:
    assert not signature_valid("github", {"X-Hub-Signature-256": f"sha256={DIGEST}"}, BODY + b" ", SECRET)


def test_github_push_lists_every_repository_url() -> None:
    payload = {"ref": "refs/heads/main", "repository": {
        "clone_url": "https://github.com/org/repo.git", "html_url": "https://github.com/org/repo",
        "ssh_url": "git@github.com:org/repo.git", "url": "https://api.github.com/repos/org/repo"}}
    push = parse_push("github", {"X-GitHub-Event": "push"}, payload)
    assert push.urls == ("https://github.com/org/repo.git", "https://github.com/org/repo",
                         "git@github.com:org/repo.git")
    assert push.refs == ("refs/heads/main",) and push.is_push


def test_github_ping_is_not_a_push() -> None:
    push = parse_push("github", {"X-GitHub-Event": "ping"}, {"repository": {"clone_url": "https://h/r.git"}})
    assert not push.is_push


def test_gitlab_push() -> None:
    payload = {"object_kind": "push", "ref": "refs/heads/dev",
               "project": {"git_http_url": "https://gitlab.com/g/r.git", "git_ssh_url": "git@gitlab.com:g/r.git",
                           "web_url": "https://gitlab.com/g/r"}}
    push = parse_push("gitlab", {"X-Gitlab-Event": "Push Hook"}, payload)
    assert push.urls == ("https://gitlab.com/g/r.git", "git@gitlab.com:g/r.git", "https://gitlab.com/g/r")
    assert push.refs == ("refs/heads/dev",) and push.is_push
    assert parse_push("gitlab", {"X-Gitlab-Event": "Tag Push Hook"}, payload).is_push


def test_bitbucket_cloud_push_lists_branches_and_tags() -> None:
    payload: dict[str, Any] = {
        "repository": {"full_name": "team/repo", "links": {"html": {"href": "https://bitbucket.org/team/repo"}}},
        "push": {"changes": [{"new": {"type": "branch", "name": "main"}},
                             {"new": {"type": "tag", "name": "v1"}},
                             {"new": None, "old": {"type": "branch", "name": "gone"}}]},
    }
    push = parse_push("bitbucket", {"X-Event-Key": "repo:push"}, payload)
    assert push.urls == ("https://bitbucket.org/team/repo",)
    assert push.refs == ("refs/heads/main", "refs/tags/v1", "refs/heads/gone")


def test_bitbucket_server_push() -> None:
    payload = {"repository": {"links": {"clone": [{"href": "ssh://git@bb.example.com:7999/prj/repo.git"},
                                                  {"href": "https://bb.example.com/scm/prj/repo.git"}]}},
               "changes": [{"ref": {"id": "refs/heads/main"}}]}
    push = parse_push("bitbucket", {"X-Event-Key": "repo:refs_changed"}, payload)
    assert push.urls == ("ssh://git@bb.example.com:7999/prj/repo.git", "https://bb.example.com/scm/prj/repo.git")
    assert push.refs == ("refs/heads/main",) and push.is_push


def test_generic_push() -> None:
    push = parse_push("generic", {}, {"repo": "https://h/r.git", "ref": "refs/heads/main"})
    assert push.urls == ("https://h/r.git",) and push.refs == ("refs/heads/main",) and push.is_push
    assert parse_push("generic", {}, {"repo": "https://h/r.git"}).refs == ()


def test_a_payload_without_a_repository_is_a_bad_request() -> None:
    with pytest.raises(WebhookError) as excinfo:
        parse_push("github", {"X-GitHub-Event": "push"}, {"ref": "refs/heads/main"})
    assert excinfo.value.status == 400


def test_parse_payload_accepts_json_and_github_form_encoding() -> None:
    data = {"ref": "refs/heads/main"}
    assert parse_payload({"Content-Type": "application/json"}, json.dumps(data).encode()) == data
    form = b"payload=" + json.dumps(data).replace(" ", "+").encode()
    assert parse_payload({"Content-Type": "application/x-www-form-urlencoded"}, form) == data
    for body in (b"not json", b"[1, 2]", b"\xff\xfe"):
        with pytest.raises(WebhookError):
            parse_payload({}, body)
