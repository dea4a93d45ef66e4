"""The agent's memory on disk: records per app, written coalesced in a thread, loaded with fallback.

The controller calls `update` after every reconcile it records; the record is
encoded to JSON right then (its cost follows the changes, not the number of apps),
and the writer task (`run`) writes in a thread at most once per `interval`, so a
thousand apps reconciling at once cost one write and no long JSON encoding holds the
event loop. A write appends the records changed since the last one to the journal
(agent.state.journal); the first write, and one once the journal has grown as large as
the snapshot, joins every record into a full snapshot instead and empties the journal:
what a write costs follows what changed, not how many apps there are. `write(full=True)`
is the final write at shutdown. A failed write (disk full, read-only filesystem) leaves
the previous snapshot and journal as they were, is counted and logged, and is tried
again (in full) at the next interval; the agent keeps serving.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.model import AppState
from agent.state.codec import RecordError, state_from_dict
from agent.state.journal import JournalFile, Replayed, read_files
from agent.state.snapshot import Loaded, SnapshotFile, encode_json

log = logging.getLogger(__name__)

WRITE_INTERVAL = 1.0
JOURNAL_MIN = 1024 * 1024  # bytes the journal may grow to before a full snapshot, however small that is


class StateObserver(Protocol):
    def observe_state_load(self, result: str) -> None: ...

    def observe_state_write(self, *, ok: bool, seconds: float, size: int, full: bool = True) -> None: ...


@dataclass(frozen=True)
class LoadResult:
    source: str  # primary | backup | empty | absent
    states: dict[str, AppState] = field(default_factory=dict)
    written_at: float | None = None
    problems: tuple[str, ...] = ()

    @property
    def lost(self) -> bool:
        """Nothing trustworthy was found: every app's inventory must be rebuilt from the cluster."""
        return self.source in ("empty", "absent")


class StateStore:
    def __init__(self, directory: Path, *, observer: StateObserver | None = None,
                 interval: float = WRITE_INTERVAL) -> None:
        self.file = SnapshotFile(directory)
        self.journal = JournalFile(directory)
        self._observer = observer
        self._interval = interval
        self._apps: dict[str, bytes] = {}  # app → its encoded record
        self._changed: dict[str, bytes | None] = {}  # since the last write; None: forgotten
        self._full_due = True  # the first write is a full snapshot, and every one after a failure
        self._snapshot_size = 0
        self._dirty = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._failure = ""
        self.writes = 0  # successful writes, for tests and logs
        self.updates = 0  # records changed so far (update and forget): `until_written` waits for one
        self._written = 0  # the count of updates the last successful write held
        self._write_done = asyncio.Event()

    # ------------------------------------------------------------------ load

    async def load(self) -> LoadResult:
        """Read the snapshot (the backup when the current one fails its checksum), replay the journal
        onto it, and decode each app. A damaged journal is trusted as little as a backup."""
        loaded, replayed, states, problems = await asyncio.to_thread(self._read_all)
        source = "backup" if loaded.source == "primary" and replayed.damaged else loaded.source
        result = LoadResult(source, states, loaded.snapshot.written_at if loaded.snapshot else None,
                            tuple(problems))
        if self._observer is not None:
            self._observer.observe_state_load(result.source)
        _log_load(result, self.file.primary)
        return result

    def _read_all(self) -> tuple[Loaded, Replayed, dict[str, AppState], list[str]]:
        """The files read and every app decoded (in a worker thread). The cyclic garbage collector
        rests meanwhile: the objects made here all live on, and at ten thousand apps its passes over
        them were two thirds of the time a load took."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            loaded, replayed = self._load_file()
            states: dict[str, AppState] = {}
            problems = [*loaded.problems, *replayed.problems]
            for name, data in _replay(loaded, replayed).items():
                try:
                    states[str(name)] = state_from_dict(str(name), data)
                except RecordError as exc:
                    problems.append(f"app {name}: record dropped: {exc}")
            return loaded, replayed, states, problems
        finally:
            if collecting:
                gc.enable()

    def _load_file(self) -> tuple[Loaded, Replayed]:
        stale = self.file.remove_stale_temporaries()
        if stale:
            log.info("removed %d temporary snapshot files left by an interrupted write", len(stale))
        return read_files(self.file, self.journal)

    # ------------------------------------------------------------------ write

    def update(self, name: str, record: Mapping[str, Any]) -> None:
        """Replace one app's record (`state_to_dict` of its AppState)."""
        encoded = self._changed[name] = encode_json(record)
        # Kept compressed until the next full snapshot: ten thousand apps' records are tens of
        # megabytes of JSON, a fifth of that compressed (level 1: about 20 µs per record).
        self._apps[name] = zlib.compress(encoded, 1)
        self.updates += 1
        self._dirty.set()

    def forget(self, names: set[str]) -> None:
        """Keep only the records of these apps."""
        for name in set(self._apps) - names:
            del self._apps[name]
            self._changed[name] = None
            self.updates += 1
            self._dirty.set()

    async def run(self) -> None:
        """The writer task: write when something changed, then rest for `interval`."""
        while True:
            await self._dirty.wait()
            await self.write()
            await asyncio.sleep(self._interval)

    async def until_written(self, update: int) -> None:
        """Return once a write holding update number `update` (`updates` after it) is on disk.
        Notifications wait for it: the mark that says "sent" is kept before the message goes."""
        while self._written < update:
            done = self._write_done
            await done.wait()

    async def write(self, *, full: bool = False) -> bool:
        """Write what changed now (everything with `full`, or when a full snapshot is due; also when
        nothing changed); False when the write failed."""
        async with self._write_lock:
            self._dirty.clear()
            full = full or self._full_due or self.journal.size > max(JOURNAL_MIN, self._snapshot_size)
            changed, self._changed = self._changed, {}
            holds = self.updates
            started = time.monotonic()
            try:
                if full:
                    size = await asyncio.to_thread(self._write_snapshot, sorted(self._apps.items()))
                else:
                    size = await asyncio.to_thread(self._append, sorted(changed.items()), self.file.checksum)
            except OSError as exc:
                self._changed = {**changed, **self._changed}  # nothing was written: they are still to write
                self._full_due = True  # a line may be half written: only a full snapshot follows it
                self._dirty.set()  # try again at the next interval
                self._failed(exc, time.monotonic() - started)
                return False
            self._written_ok(holds, size, time.monotonic() - started, full=full)
            return True

    def _written_ok(self, holds: int, size: int, seconds: float, *, full: bool) -> None:
        if full:
            self._full_due, self._snapshot_size = False, size
        self.writes += 1
        self._written = holds
        self._write_done.set()
        self._write_done = asyncio.Event()
        if self._observer is not None:
            self._observer.observe_state_write(ok=True, seconds=seconds, size=size, full=full)
        if self._failure:
            log.warning("state snapshot written again after failures", extra={"duration": round(seconds, 3)})
            self._failure = ""

    def _write_snapshot(self, records: list[tuple[str, bytes]]) -> int:
        """Every app's record (compressed) into a full snapshot, one record in memory at a time."""
        parts = _payload_parts((name, zlib.decompress(record)) for name, record in records)
        size = self.file.write_parts(parts, written_at=time.time())
        self.journal.empty()  # its lines are in the snapshot now
        return size

    def _append(self, records: list[tuple[str, bytes | None]], base: str) -> int:
        return self.journal.append(_apps_payload(records), base=base)

    def _failed(self, exc: OSError, seconds: float) -> None:
        message = f"{self.file.primary}: {exc.strerror or exc}"
        if self._observer is not None:
            self._observer.observe_state_write(ok=False, seconds=seconds, size=0)
        if message != self._failure:  # once per distinct failure, not once a second
            log.error("cannot write the state snapshot; the previous one is kept", extra={"error": message})
        self._failure = message


def _replay(loaded: Loaded, replayed: Replayed) -> dict[str, Any]:
    """Each app's record: the snapshot's, replaced by the journal's lines in order (null: forgotten)."""
    apps = loaded.snapshot.payload.get("apps") if loaded.snapshot else None
    records = dict(apps) if isinstance(apps, dict) else {}
    for payload in replayed.payloads:
        changes = payload.get("apps")
        records.update(changes if isinstance(changes, dict) else {})
    return {name: record for name, record in records.items() if record is not None}


def records_on_disk(directory: Path) -> dict[str, Any]:
    """Every app's record (JSON) as `directory` holds it now: the snapshot, or its backup, with the
    journal replayed. Read only and blocking: for tools and tests, also while an agent writes."""
    return _replay(*read_files(SnapshotFile(directory), JournalFile(directory)))


def _apps_payload(records: list[tuple[str, bytes | None]]) -> bytes:
    """`{"apps":{name: record, ...}}` from encoded records (None: null, a forgotten app), in order."""
    return b"".join(_payload_parts(records))


def _payload_parts(records: Iterable[tuple[str, bytes | None]]) -> Iterator[bytes]:
    yield b'{"apps":{'
    for index, (name, record) in enumerate(records):
        yield (b"," if index else b"") + encode_json(name) + b":" + (record if record is not None else b"null")
    yield b"}}"


def _log_load(result: LoadResult, path: Path) -> None:
    details = {"error": "; ".join(result.problems)} if result.problems else {}
    if result.source == "primary":
        log.info("state loaded from %s: %d applications", path, len(result.states), extra=details)
    elif result.source == "backup":
        log.warning("state snapshot unusable; loaded the backup: %d applications", len(result.states),
                    extra=details)
    elif result.source == "absent":  # a first start (or a state_dir that is not kept, such as an emptyDir)
        log.info("no state snapshot in %s: starting empty; inventories are rebuilt from the cluster", path.parent)
    else:
        log.error("STATE LOST: snapshot and backup are both unusable; starting empty, rebuilding "
                  "inventories from the cluster before anything is pruned", extra=details)
