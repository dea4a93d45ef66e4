"""The agent's memory on disk: records per app, written coalesced in a thread, loaded with fallback.

The controller calls `update` after every reconcile it records; the record is
encoded to JSON right then (its cost follows the changes, not the number of apps),
and the writer task (`run`) joins the encoded records and writes them in a thread at
most once per `interval`, so a thousand apps reconciling at once cost one write and
no long JSON encoding holds the event loop. `write` is also the final write at shutdown. A failed write (disk
full, read-only filesystem) leaves the previous snapshot as it was, is counted and
logged, and is tried again at the next interval; the agent keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from agent.model import AppState
from agent.state.codec import RecordError, state_from_dict
from agent.state.snapshot import Loaded, SnapshotFile, encode_json

log = logging.getLogger(__name__)

WRITE_INTERVAL = 1.0


class StateObserver(Protocol):
    def observe_state_load(self, result: str) -> None: ...

    def observe_state_write(self, *, ok: bool, seconds: float, size: int) -> None: ...


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
        self._observer = observer
        self._interval = interval
        self._apps: dict[str, bytes] = {}  # app → its encoded record
        self._dirty = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._failure = ""
        self.writes = 0  # successful writes, for tests and logs
        self.updates = 0  # records changed so far (update and forget): `until_written` waits for one
        self._written = 0  # the count of updates the last successful write held
        self._write_done = asyncio.Event()

    # ------------------------------------------------------------------ load

    async def load(self) -> LoadResult:
        """Read the snapshot (the backup when the current one fails its checksum) and decode each app."""
        loaded = await asyncio.to_thread(self._load_file)
        states: dict[str, AppState] = {}
        problems = list(loaded.problems)
        apps = loaded.snapshot.payload.get("apps") if loaded.snapshot else None
        for name, data in (apps or {}).items() if isinstance(apps, dict) else ():
            try:
                states[str(name)] = state_from_dict(str(name), data)
            except RecordError as exc:
                problems.append(f"app {name}: record dropped: {exc}")
        result = LoadResult(loaded.source, states, loaded.snapshot.written_at if loaded.snapshot else None,
                            tuple(problems))
        if self._observer is not None:
            self._observer.observe_state_load(result.source)
        _log_load(result, self.file.primary)
        return result

    def _load_file(self) -> Loaded:
        stale = self.file.remove_stale_temporaries()
        if stale:
            log.info("removed %d temporary snapshot files left by an interrupted write", len(stale))
        return self.file.load()

    # ------------------------------------------------------------------ write

    def update(self, name: str, record: Mapping[str, Any]) -> None:
        """Replace one app's record (`state_to_dict` of its AppState)."""
        self._apps[name] = encode_json(record)
        self.updates += 1
        self._dirty.set()

    def forget(self, names: set[str]) -> None:
        """Keep only the records of these apps."""
        for name in set(self._apps) - names:
            del self._apps[name]
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

    async def write(self) -> bool:
        """Write everything now (also when nothing changed); False when the write failed."""
        async with self._write_lock:
            self._dirty.clear()
            records = sorted(self._apps.items())
            holds = self.updates
            started = time.monotonic()
            try:
                size = await asyncio.to_thread(self._write_records, records)
            except OSError as exc:
                self._dirty.set()  # try again at the next interval
                self._failed(exc, time.monotonic() - started)
                return False
            seconds = time.monotonic() - started
            self.writes += 1
            self._written = holds
            self._write_done.set()
            self._write_done = asyncio.Event()
            if self._observer is not None:
                self._observer.observe_state_write(ok=True, seconds=seconds, size=size)
            if self._failure:
                log.warning("state snapshot written again after failures", extra={"duration": round(seconds, 3)})
                self._failure = ""
            return True

    def _write_records(self, records: list[tuple[str, bytes]]) -> int:
        body = b'{"apps":{' + b",".join(encode_json(name) + b":" + record for name, record in records) + b"}}"
        return self.file.write(body, written_at=time.time())

    def _failed(self, exc: OSError, seconds: float) -> None:
        message = f"{self.file.primary}: {exc.strerror or exc}"
        if self._observer is not None:
            self._observer.observe_state_write(ok=False, seconds=seconds, size=0)
        if message != self._failure:  # once per distinct failure, not once a second
            log.error("cannot write the state snapshot; the previous one is kept", extra={"error": message})
        self._failure = message


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
