"""One snapshot file on disk: checksummed envelope, atomic replace, previous one kept as backup.

Blocking I/O: call these from a worker thread.

The file is one JSON object, written as exactly these bytes:

    {"format":1,"checksum":"sha256:<hex>","written_at":<unix time>,"payload":<payload>}\\n

where `<payload>` is compact JSON (sorted keys) and the checksum is the SHA-256 of
exactly those payload bytes. A write goes to a temporary file in the same directory, is
fsynced, the current file is hard-linked as the backup, the temporary file is renamed
over the current one, and the directory is fsynced: at every instant the current file
is a complete snapshot, old or new, and a crash leaves at worst a stray temporary file.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
FILE_NAME = "state.json"
_HEADER = re.compile(rb'\{"format":(\d+),"checksum":"sha256:([0-9a-f]{64})","written_at":([-+0-9.eE]+),"payload":')
_TRAILER = b"}\n"


class SnapshotError(ValueError):
    """A snapshot that cannot be trusted: truncated, altered, or of another format."""


@dataclass(frozen=True)
class Snapshot:
    payload: dict[str, Any]
    written_at: float
    checksum: str = ""  # hex SHA-256 of the payload bytes: what journal lines name as their base


@dataclass(frozen=True)
class Loaded:
    """What `SnapshotFile.load` found: `source` is `primary`, `backup`, `empty` (both unusable) or
    `absent` (neither exists: a first start)."""

    source: str
    snapshot: Snapshot | None
    problems: tuple[str, ...] = field(default_factory=tuple)


def encode_json(value: Any) -> bytes:
    """Compact JSON with sorted keys: the form every part of a payload is written in."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def encode(payload: dict[str, Any] | bytes, *, written_at: float) -> bytes:
    """The file's bytes; `payload` may be given already encoded (a JSON object)."""
    body = payload if isinstance(payload, bytes) else encode_json(payload)
    return b"".join((_header(hashlib.sha256(body).hexdigest(), written_at), body, _TRAILER))


def _header(checksum: str, written_at: float) -> bytes:
    return f'{{"format":{FORMAT},"checksum":"sha256:{checksum}","written_at":{written_at!r},"payload":'.encode()


def decode(data: bytes) -> Snapshot:
    header = _HEADER.match(data)
    if header is None:
        raise SnapshotError("not a snapshot (no envelope header)" if data else "empty file")
    if int(header[1]) != FORMAT:
        raise SnapshotError(f"format {int(header[1])}; this agent reads format {FORMAT}")
    body = data[header.end():]
    if not body.endswith(_TRAILER):
        raise SnapshotError("truncated")
    body = body[:-len(_TRAILER)]
    if hashlib.sha256(body).hexdigest() != header[2].decode():
        raise SnapshotError("checksum mismatch")
    try:
        payload = json.loads(body)
        written_at = float(header[3])
    except ValueError as exc:  # only possible for a file whose checksum was forged along with it
        raise SnapshotError(f"unreadable: {exc}") from exc
    if not isinstance(payload, dict):
        raise SnapshotError("payload is not an object")
    return Snapshot(payload, written_at, header[2].decode())


class SnapshotFile:
    """`DIR/state.json` and its backup `DIR/state.json.bak`; writes are serialized."""

    def __init__(self, directory: Path, name: str = FILE_NAME) -> None:
        self.directory = directory
        self.primary = directory / name
        self.backup = directory / f"{name}.bak"
        self._temp_prefix = f".{name}.tmp-"
        self._lock = threading.Lock()
        self._counter = itertools.count()
        # Only a current file known to be good becomes the backup: after loading from the
        # backup because the current file was corrupt, the good backup is not overwritten.
        self._primary_good = False
        self.checksum = ""  # of the current file's payload, once loaded or written by this process

    def load(self) -> Loaded:
        problems: list[str] = []
        missing = 0
        for source, path in (("primary", self.primary), ("backup", self.backup)):
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                missing += 1
                problems.append(f"{path}: does not exist")
                continue
            except OSError as exc:
                problems.append(f"{path}: cannot read: {exc.strerror or exc}")
                continue
            try:
                snapshot = decode(data)
            except SnapshotError as exc:
                problems.append(f"{path}: {exc}")
                continue
            self._primary_good = source == "primary"
            self.checksum = snapshot.checksum if self._primary_good else ""
            return Loaded(source, snapshot, tuple(problems))
        return Loaded("absent" if missing == 2 else "empty", None, tuple(problems))

    def write(self, payload: dict[str, Any] | bytes, *, written_at: float) -> int:
        """Replace the snapshot atomically; returns its size. On error (disk full…) nothing changed."""
        body = payload if isinstance(payload, bytes) else encode_json(payload)
        return self.write_parts([body], written_at=written_at)

    def write_parts(self, parts: Iterable[bytes], *, written_at: float) -> int:
        """`write` of the payload whose bytes are `parts` joined, never joined in memory: the snapshot
        of ten thousand apps is tens of megabytes, and a copy or two of it the agent's peak memory."""
        with self._lock:
            temp = self.directory / f"{self._temp_prefix}{os.getpid()}-{next(self._counter)}"
            try:
                size, checksum = _write_envelope(temp, parts, written_at=written_at)
                if self._primary_good:
                    self._keep_backup()
                os.replace(temp, self.primary)
            except BaseException:
                with contextlib.suppress(OSError):
                    temp.unlink()
                raise
            self._primary_good = True
            self.checksum = checksum
            _fsync_directory(self.directory)
        return size

    def _keep_backup(self) -> None:
        """Make the current file the backup without a moment when no current file exists."""
        link = self.directory / f"{self._temp_prefix}bak-{os.getpid()}-{next(self._counter)}"
        try:
            os.link(self.primary, link)
        except FileNotFoundError:
            return
        except OSError:  # a filesystem without hard links: the current file moves (a crash now loads the backup)
            os.replace(self.primary, self.backup)
            return
        try:
            os.replace(link, self.backup)
        except BaseException:
            with contextlib.suppress(OSError):
                link.unlink()
            raise

    def remove_stale_temporaries(self) -> list[str]:
        """Temporary files a killed writer left behind (call when no writer runs)."""
        removed = []
        for path in self.directory.glob(f"{self._temp_prefix}*"):
            with contextlib.suppress(OSError):
                path.unlink()
                removed.append(path.name)
        return removed


def _write_envelope(path: Path, parts: Iterable[bytes], *, written_at: float) -> tuple[int, str]:
    """Write `encode(b"".join(parts))` to a new file and fsync it, part by part: the payload after room
    for the header (whose length does not depend on the checksum), then the header with the checksum
    of what was written. Returns the size and the checksum."""
    header_size = len(_header("0" * 64, written_at))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        digest, size = hashlib.sha256(), header_size
        os.lseek(fd, header_size, os.SEEK_SET)
        for part in parts:
            digest.update(part)
            size += write_all(fd, part)
        size += write_all(fd, _TRAILER)
        checksum = digest.hexdigest()
        os.lseek(fd, 0, os.SEEK_SET)
        write_all(fd, _header(checksum, written_at))
        os.fsync(fd)
    finally:
        os.close(fd)
    return size, checksum


def write_all(fd: int, data: bytes) -> int:
    """`data` written whole (os.write may write less); returns its length."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return len(data)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
