"""API tokens in kube-apiserver's static token file format, re-read when the file changes.

    token,user,uid[,"group1,group2"]

One line per token (CSV: quote the groups when there are several); blank lines and lines
starting with `#` are skipped. Only a SHA-256 digest of each token is kept in memory, and a
presented token is compared with every known digest in constant time, so neither the answer
nor its timing tells how much of a guess was right. Tokens are never logged.

A file that changes is read again on the next request (at most once a second). A file that
cannot be read or parsed then keeps the tokens read before (logged): a typo while editing
must neither lock everyone out nor let anyone in.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from agent.errors import ConfigError
from agent.policy import Subject

log = logging.getLogger(__name__)

RECHECK = 1.0  # seconds between looks at the file's identity (size, mtime, inode)


@dataclass(frozen=True)
class TokenEntry:
    digest: bytes  # SHA-256 of the token
    subject: Subject
    uid: str


def parse_token_file(text: str, *, path: str) -> tuple[TokenEntry, ...]:
    """Entries of a token file; ValueError naming the path and line of the first bad one."""
    entries: dict[bytes, TokenEntry] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        record = next(csv.reader(io.StringIO(line), skipinitialspace=True))
        if len(record) < 3:
            raise ValueError(f"{path}: line {number}: needs at least 3 columns (token, user name, user uid), "
                             f"found {len(record)}")
        token, user, uid = (field.strip() for field in record[:3])
        if not token or not user:
            raise ValueError(f"{path}: line {number}: the token and the user name must not be empty")
        groups = tuple(group.strip() for group in record[3].split(",") if group.strip()) if len(record) > 3 else ()
        digest = hashlib.sha256(token.encode()).digest()
        if digest in entries:
            raise ValueError(f"{path}: line {number}: this token is already given to "
                             f"{entries[digest].subject.user}")
        entries[digest] = TokenEntry(digest, Subject(user, groups), uid)
    return tuple(entries.values())


class TokenFile:
    def __init__(self, path: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self._clock = clock
        self._entries: tuple[TokenEntry, ...] = ()
        self._identity: tuple[int, int, int] | None = None
        self._checked = float("-inf")
        self._failed: tuple[int, int, int] | None = None  # a version that did not parse: logged once

    def load(self) -> int:
        """Read the file now; ConfigError when it cannot be read or parsed. Returns the number of tokens."""
        try:
            identity = self._stat()
            with open(self.path, encoding="utf-8") as file:
                text = file.read()
            entries = parse_token_file(text, path=self.path)
        except OSError as exc:
            raise ConfigError(f"[auth] token_file {self.path}: cannot read: {exc.strerror}") from exc
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError(f"[auth] token_file {exc}") from exc
        self._entries, self._identity, self._failed = entries, identity, None
        self._checked = self._clock()
        return len(entries)

    def authenticate(self, token: str) -> Subject | None:
        """The subject holding `token`, or None. Every known digest is compared, whatever matches."""
        self._refresh()
        presented = hashlib.sha256(token.encode()).digest()
        found: Subject | None = None
        for entry in self._entries:
            if hmac.compare_digest(entry.digest, presented):
                found = entry.subject
        return found

    def _stat(self) -> tuple[int, int, int]:
        status = os.stat(self.path)
        return status.st_ino, status.st_size, status.st_mtime_ns

    def _refresh(self) -> None:
        now = self._clock()
        if now - self._checked < RECHECK:
            return
        self._checked = now
        try:
            identity = self._stat()
        except OSError as exc:
            if self._failed is None:
                log.error("API token file cannot be read; the tokens read before stay valid",
                          extra={"path": self.path, "error": exc.strerror})
                self._failed = (0, 0, 0)
            return
        if identity == self._identity or identity == self._failed:
            return
        try:
            count = self.load()
        except ConfigError as exc:
            self._failed = identity
            log.error("API token file changed but cannot be used; the tokens read before stay valid",
                      extra={"path": self.path, "error": str(exc)})
            return
        log.info("API token file re-read: %d tokens", count, extra={"path": self.path})
