"""What changed since the last full snapshot: `state_dir/state.journal`, one line per write.

Blocking I/O: call these from a worker thread.

With ten thousand apps a full snapshot is tens of megabytes; writing it every second while
apps change would make every change cost as much as all apps together. So between two full
snapshots (agent.state.snapshot) each write appends only the records that changed, as
exactly these bytes:

    {"checksum":"sha256:<hex>","base":"<hex>","payload":{"apps":{"<name>":<record or null>}}}\\n

`base` is the checksum of the snapshot the line follows, `checksum` the SHA-256 of the base's
64 hex digits followed by the payload bytes (a record of null: the app left the configuration).
At load, the lines whose base is the loaded snapshot's are replayed onto it in order. A line
of another base was written before that snapshot replaced it and is skipped. A fragment
without its newline at the end is a write the process did not finish, and is ignored; a
whole line that fails its checksum is damage: reading stops there, and the caller trusts the
state no more than a backup.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.state.snapshot import Loaded, SnapshotFile, write_all

FILE_NAME = "state.journal"
_LINE = re.compile(rb'\{"checksum":"sha256:([0-9a-f]{64})","base":"([0-9a-f]{64})","payload":(.*)\}')


@dataclass(frozen=True)
class Replayed:
    """The journal's lines for one snapshot, oldest first, and what was wrong with the rest."""

    payloads: tuple[dict[str, Any], ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)
    damaged: bool = False  # a bad line before good ones: not an unfinished write


def encode_line(payload: bytes, *, base: str) -> bytes:
    checksum = _checksum(base.encode(), payload)
    return b'{"checksum":"sha256:' + checksum.encode() + b'","base":"' + base.encode() + b'","payload":' + \
        payload + b"}\n"


def decode_lines(data: bytes, *, base: str) -> Replayed:
    """The payloads of the lines that follow the snapshot `base`. Pure.

    A killed writer leaves at most a fragment without its newline at the end: that write did
    not happen. A whole line that fails its checksum is damage: reading stops there, and the
    result says so."""
    payloads: list[dict[str, Any]] = []
    lines = data.split(b"\n")
    fragment = lines.pop()  # after the last newline: empty, or a line the writer did not finish
    for number, line in enumerate(lines, start=1):
        match = _LINE.fullmatch(line)
        payload = _verified(match) if match else None
        if match is None or payload is None:
            return Replayed(tuple(payloads), (f"line {number} is damaged; it and later lines are ignored",),
                            damaged=True)
        if match[2].decode() == base:
            payloads.append(payload)
    unfinished = (f"line {len(lines) + 1} is incomplete (a write that did not finish)",) if fragment else ()
    return Replayed(tuple(payloads), unfinished)


def _checksum(base: bytes, payload: bytes) -> str:
    """Over the base too: a line must not move to another snapshot by a flipped bit."""
    digest = hashlib.sha256(base)
    digest.update(payload)
    return digest.hexdigest()


def _verified(match: re.Match[bytes]) -> dict[str, Any] | None:
    body = match[3]
    if _checksum(match[2], body) != match[1].decode():
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None


def read_files(snapshot: SnapshotFile, journal: JournalFile) -> tuple[Loaded, Replayed]:
    """The snapshot (or its backup), and the journal's lines that follow it: none after a backup,
    whose lines the journal no longer holds."""
    loaded = snapshot.load()
    if loaded.source != "primary" or loaded.snapshot is None:
        return loaded, Replayed()
    return loaded, journal.read(base=loaded.snapshot.checksum)


class JournalFile:
    """`DIR/state.journal`: appended to, read at load, emptied after each full snapshot."""

    def __init__(self, directory: Path, name: str = FILE_NAME) -> None:
        self.directory = directory
        self.name = name
        self.size = 0  # bytes appended since it was last emptied (by this process)

    @property
    def path(self) -> Path:
        return self.directory / self.name

    def append(self, payload: bytes, *, base: str) -> int:
        """Append one line and fsync it; returns its size. On error part of the line may be there:
        the caller must not append again before a full snapshot empties the journal."""
        line = encode_line(payload, base=base)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            write_all(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        self.size += len(line)
        return len(line)

    def empty(self) -> None:
        """After a full snapshot: the lines are in it (a crash before this leaves lines of an older base,
        which a load skips). Raises OSError when it could not: then nothing may be appended."""
        with contextlib.suppress(FileNotFoundError):
            os.truncate(self.path, 0)
        self.size = 0

    def read(self, *, base: str) -> Replayed:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return Replayed()
        except OSError as exc:
            return Replayed(problems=(f"{self.path}: cannot read: {exc.strerror or exc}",), damaged=True)
        replayed = decode_lines(data, base=base)
        return Replayed(replayed.payloads, tuple(f"{self.path}: {p}" for p in replayed.problems), replayed.damaged)
