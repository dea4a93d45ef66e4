"""URLs as the agent shows them: no user information (a token may be the user name), no credential parameters."""

from __future__ import annotations

import pytest

from agent.render.remote import shown
from agent.source.credentials import CredentialStore
from agent.source.transport import request_error
from agent.source.urls import redact_url, redact_urls_in

TOKEN = "ghp_" + "1234abcd" * 5


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://{TOKEN}@github.com/org/repo.git", "https://github.com/org/repo.git"),
        (f"https://x-access-token:{TOKEN}@github.com/org/repo.git", "https://github.com/org/repo.git"),
        (f"https://gitlab.example.com/g/r.git?private_token={TOKEN}&ref=main",
         "https://gitlab.example.com/g/r.git?private_token=***&ref=main"),
        (f"https://h.example/r?X-Amz-Signature={TOKEN}", "https://h.example/r?X-Amz-Signature=***"),
        ("ssh://git@git.example.com:2222/org/repo.git", "ssh://git.example.com:2222/org/repo.git"),
    ],
)
def test_urls_are_shown_without_credentials(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_urls_in_messages_lose_their_credentials() -> None:
    message = (f"fatal: unable to access 'https://{TOKEN}@github.com/org/r.git/': 403; "
               f"see https://h.example/r?access_token={TOKEN}&page=2")
    assert redact_urls_in(message) == ("fatal: unable to access 'https://github.com/org/r.git/': 403; "
                                       "see https://h.example/r?access_token=***&page=2")
    assert shown(f"git::https://{TOKEN}@github.com/org/r?ref=v1") == "git::https://github.com/org/r?ref=v1"


def test_a_token_user_name_is_a_secret_to_scrub() -> None:
    access = CredentialStore([]).access(f"https://{TOKEN}@github.com/org/repo.git")
    assert access.secrets == (TOKEN,) and TOKEN not in repr(access)
    error = request_error(f"https://{TOKEN}@github.com/org/repo.git", "fetch",
                          OSError(f"HTTP 403 for user {TOKEN} at https://{TOKEN}@github.com/org/repo.git"),
                          access.secrets)
    assert TOKEN not in str(error)
    assert str(error).startswith("https://github.com/org/repo.git: fetch failed: HTTP 403 for user *** at ")
    ssh = CredentialStore([]).access("ssh://git@github.com/org/repo.git")
    assert ssh.secrets == ()  # an ssh login name is not a secret, and scrubbing `git` would mangle messages
