"""What of an app's state outlives its owner, and its form in the cluster. Pure.

    durable_record(state)          the durable part of an AppState, as plain data
    change_key(record)             bytes that differ exactly when the record changed in substance
    merged(local, record)          the local state with the durable part the cluster holds
    encode_bucket / decode_bucket  one bucket's records, gzip-compressed, as a ConfigMap holds them

The durable part is what a new owner must not lose: the auto-sync pause, the sync history,
the last sync (automated retries count from it), the commit the tracked revision last
resolved to, notification marks, what a parent adopted (so every replica knows every child),
the sync in progress, the status, and the proofs of sync (a new owner then compares without
a dry run). The inventory and the kinds are not shared: a new owner rebuilds them from the
cluster before it prunes anything. A poll that changes nothing changes no record; a record
whose only change is its `reconciled_at` or its proofs is not written on its own (proofs go
along with the next real change: a stale proof only costs a dry run).

The payload is one line per app, `<name as JSON>\\t<record as JSON>\\n`, after a header
line, so a reader compares lines and decodes only the apps that changed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

from agent.model import AppState
from agent.state import RecordError, state_from_dict, state_to_dict
from agent.state.snapshot import encode_json

HEADER = b"gitops-agent shared state 1\n"
DURABLE_KEYS = ("status", "last_sync", "tracked_sha", "applied", "history", "pause", "operation", "cluster",
                "notified", "adopted")
COMPRESS_LEVEL = 6  # measured: level 1 makes the object about 1.4x larger for little less CPU


class BucketError(ValueError):
    """A shared-state object this version cannot read."""


def durable_record(state: AppState) -> dict[str, Any]:
    full = state_to_dict(state)
    return {key: full[key] for key in DURABLE_KEYS}


def change_key(record: Mapping[str, Any]) -> bytes:
    """A digest of what makes a record worth writing: everything but `reconciled_at` and the proofs."""
    status = dict(record.get("status") or {})
    status.pop("reconciled_at", None)
    substance = {key: value for key, value in record.items() if key not in ("applied", "status", "stamp")}
    return hashlib.blake2b(encode_json({"status": status, **substance}), digest_size=16).digest()


def merged(local: AppState, record: Mapping[str, Any]) -> AppState:
    """`local` with the durable part of `record`; its inventory and kinds stay (they are not shared).
    Raises RecordError for a record this version cannot read."""
    full = state_to_dict(local)
    full.update({key: record[key] for key in DURABLE_KEYS if key in record})
    state = state_from_dict(local.name, full)
    return state


def line(name: str, record: Mapping[str, Any]) -> bytes:
    return json.dumps(name).encode() + b"\t" + encode_json(record) + b"\n"


def encode_bucket(lines: Iterable[bytes]) -> bytes:
    """The gzip-compressed payload of one bucket (lines from `line`, in any order)."""
    return gzip.compress(HEADER + b"".join(sorted(lines)), compresslevel=COMPRESS_LEVEL, mtime=0)


def decode_lines(payload: bytes, *, where: str) -> dict[str, bytes]:
    """name → its line, from a compressed payload. Raises BucketError."""
    try:
        text = gzip.decompress(payload)
    except (OSError, EOFError, ValueError) as exc:
        raise BucketError(f"{where}: not a gzip payload: {exc}") from exc
    if not text.startswith(HEADER):
        raise BucketError(f"{where}: not a shared state of format 1")
    found: dict[str, bytes] = {}
    for raw in text[len(HEADER):].splitlines(keepends=True):
        name_part, _, _ = raw.partition(b"\t")
        try:
            name = json.loads(name_part)
        except ValueError as exc:
            raise BucketError(f"{where}: a line without an app name: {exc}") from exc
        if not isinstance(name, str):
            raise BucketError(f"{where}: a line whose app name is not text")
        found[name] = raw
    return found


def record_of(raw: bytes, *, where: str) -> dict[str, Any]:
    """The record of one line. Raises RecordError."""
    try:
        record = json.loads(raw.partition(b"\t")[2])
    except ValueError as exc:
        raise RecordError(f"{where}: {exc}") from exc
    if not isinstance(record, dict):
        raise RecordError(f"{where}: not an object")
    return record
