"""API tokens in kube-apiserver's static token file format: parsing, constant-time lookup, re-reading."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.errors import ConfigError
from agent.policy import Subject
from agent.server.tokens import TokenFile, parse_token_file


def test_lines_give_user_uid_and_groups() -> None:
    entries = parse_token_file(
        '# comment\n\nt0k3n-a,alice,1001\nt0k3n-b,ci-bot,1002,"payments-devs,proj:payments-team:developer"\n'
        "t0k3n-c, bob , 1003 , ops\n", path="tokens.csv")
    assert [(e.subject, e.uid) for e in entries] == [
        (Subject("alice"), "1001"),
        (Subject("ci-bot", ("payments-devs", "proj:payments-team:developer")), "1002"),
        (Subject("bob", ("ops",)), "1003"),
    ]
    assert all(b"t0k3n" not in entry.digest for entry in entries), "only digests are kept"


@pytest.mark.parametrize(("text", "message"), [
    ("only,two\n", "tokens.csv: line 1: needs at least 3 columns"),
    ("ok,a,1\n,b,2\n", "tokens.csv: line 2: the token and the user name must not be empty"),
    ("same,a,1\nsame,b,2\n", "tokens.csv: line 2: this token is already given to a"),
])
def test_mistakes_name_the_line_and_never_the_token(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_token_file(text, path="tokens.csv")
    assert "same" not in str(caught.value).replace("same,", "")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_file_is_read_again_when_it_changes_and_kept_when_broken(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text("first-token,alice,1\n")
    clock = Clock()
    tokens = TokenFile(str(path), clock=clock)
    assert tokens.load() == 1
    assert tokens.authenticate("first-token") == Subject("alice")
    assert tokens.authenticate("first-tokeN") is None and tokens.authenticate("") is None

    path.write_text("second-token,bob,2,admins\n")
    os.utime(path, ns=(1, 10**18))  # a different mtime even within the file system's granularity
    assert tokens.authenticate("first-token") == Subject("alice"), "not looked at again within a second"
    clock.now += 1.5
    assert tokens.authenticate("second-token") == Subject("bob", ("admins",))
    assert tokens.authenticate("first-token") is None, "a removed token stops working"

    path.write_text("broken\n")
    os.utime(path, ns=(1, 2 * 10**18))
    clock.now += 1.5
    assert tokens.authenticate("second-token") == Subject("bob", ("admins",)), "a broken edit keeps the old ones"
    path.unlink()
    clock.now += 1.5
    assert tokens.authenticate("second-token") == Subject("bob", ("admins",))


def test_a_missing_file_at_start_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\[auth\] token_file .*/absent.csv: cannot read"):
        TokenFile(str(tmp_path / "absent.csv")).load()
