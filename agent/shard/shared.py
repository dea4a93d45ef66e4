"""The shared state in the cluster: one ConfigMap per bucket, `<sharding_name>-state-<bucket>`.

    binaryData.state   gzip of one line per app (agent.shard.records), written by the bucket's owner

Owner side: `update` is called with every state the AppTable persists; once per write
interval the latest state of each app is compared with what the cluster has (its durable
part), and only a real change marks the bucket dirty. A writer
task writes dirty buckets at most every `interval` (a pause at once: `write_now`),
each with the resourceVersion it last saw (PUT; POST for a new one); on 409 it reads the
object, keeps the records of apps it does not know, and writes again. A no-op poll writes
nothing, and a write is refused unless this replica holds the bucket at that moment.

Reader side: every replica lists and watches all of them (one labelled WATCH), and hands the
records of buckets it does not hold, app by app and only those that changed, to `on_remote`:
so every replica knows every app, its status, pause and history, and every parent's
children. A new owner reads its buckets afresh (`load`) before it runs their apps.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol
from urllib.parse import quote

from agent.errors import KubeConflict, KubeError, KubeNotFound, KubeUnreachable, WatchExpired
from agent.kube import KubeClient
from agent.model import AppState
from agent.shard.buckets import BUCKETS, bucket_of
from agent.shard.records import (
    BucketError,
    change_key,
    decode_lines,
    durable_record,
    encode_bucket,
    line,
    record_of,
)

log = logging.getLogger(__name__)

STATE_LABEL = "gitops-agent.io/state-of"
BUCKET_LABEL = "gitops-agent.io/bucket"
STATE_KEY = "state"
WRITE_INTERVAL = 2.0
WATCH_RETRY = (0.5, 1.0, 2.0, 5.0)
RemoteRecords = Callable[[int, dict[str, bytes]], Awaitable[None]]  # bucket, name → line: the apps whose line changed


class SharedObserver(Protocol):
    def observe_shared_write(self, *, ok: bool, size: int) -> None: ...


class SharedState:
    def __init__(self, kube: KubeClient, *, namespace: str, prefix: str, observer: SharedObserver | None = None,
                 interval: float = WRITE_INTERVAL) -> None:
        self._kube, self.namespace, self.prefix = kube, namespace, prefix
        # Not behind the token bucket: a hand-over waits for these, and must not queue behind a
        # burst of syncs (they are few: one write per changed bucket at most every `interval`).
        self._requests = kube.unpaced()
        self._observer, self._interval = observer, interval
        # Set by the coordinator and the controller: whether a bucket may be written now, and where
        # the records of buckets held elsewhere go.
        self.holds: Callable[[int], bool] = _never
        self.on_remote: RemoteRecords | None = None
        self._collection = f"/api/v1/namespaces/{quote(namespace, safe='')}/configmaps"
        self._lines: dict[int, dict[str, bytes]] = {}  # buckets held: every app's line as written
        self._keys: dict[str, bytes] = {}  # app → the change key of its durable part as the cluster has it
        self._seen: dict[int, dict[str, bytes]] = {}  # buckets not held: app → digest of the line last handed on
        self._versions: dict[int, str] = {}  # bucket → resourceVersion last read or written
        self._dirty: set[int] = set()
        self._pending: dict[str, AppState] = {}  # app → its latest state, not yet compared with its record
        # Buckets lost with changes not yet written (a lapse): written if claimed again before
        # another owner writes them (then theirs wins).
        self._unwritten: dict[int, dict[str, bytes]] = {}
        self._wake = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self.sizes: dict[int, int] = {}  # bucket → bytes of its last compressed payload (for /readyz, tests)
        self.writes = 0

    def name_of(self, bucket: int) -> str:
        return f"{self.prefix}-state-{bucket:02d}"

    # ------------------------------------------------------------------ the owner's side

    def update(self, state: AppState) -> None:
        """The app's state as just persisted. Only kept here: whether its durable part changed is
        worked out once per write interval (`_absorb`), not at every step of a sync."""
        if bucket_of(state.name) in self._lines:  # else not held: the state cannot be ours to write
            self._pending[state.name] = state
            self._wake.set()

    def _absorb(self) -> None:
        """Mark the buckets of the apps whose durable part changed since it was last recorded."""
        pending, self._pending = self._pending, {}
        for name, state in pending.items():
            bucket = bucket_of(name)
            lines = self._lines.get(bucket)
            if lines is None:
                continue
            record = durable_record(state)
            key = change_key(record)
            if self._keys.get(name) == key and name in lines:
                continue
            self._keys[name] = key
            lines[name] = line(name, record)
            self._dirty.add(bucket)

    def forget(self, name: str) -> None:
        """The app is gone from the configuration: its record goes at the next write."""
        bucket = bucket_of(name)
        lines = self._lines.get(bucket)
        self._pending.pop(name, None)
        if lines is not None and lines.pop(name, None) is not None:
            self._keys.pop(name, None)
            self._dirty.add(bucket)
            self._wake.set()

    async def write_now(self, name: str) -> bool:
        """Write the app's bucket now if it is dirty; False when it could not be written."""
        return await self.flush({bucket_of(name)})

    def dirty(self, name: str) -> bool:
        """Whether a change to the app may not be in the cluster yet."""
        return name in self._pending or bucket_of(name) in self._dirty

    async def load(self, bucket: int) -> dict[str, bytes]:
        """Read a bucket just claimed, afresh: its lines (raises KubeError / KubeUnreachable). What this
        replica changed and could not write before it lost the bucket (a lapse) is kept, unless another
        owner wrote the bucket since."""
        found, version = await self._read(bucket)
        mine = self._unwritten.pop(bucket, {})
        lines = {**found, **mine}
        for name, raw in lines.items():
            with contextlib.suppress(ValueError):
                self._keys[name] = change_key(record_of(raw, where=self.name_of(bucket)))
        self._lines[bucket] = lines
        self._versions[bucket] = version
        self._seen.pop(bucket, None)
        if mine:
            self._dirty.add(bucket)
            self._wake.set()
        return lines

    def drop(self, bucket: int) -> None:
        """No longer held: the bucket is followed from the watch again."""
        self._absorb()
        lines = self._lines.pop(bucket, {})
        if bucket in self._dirty:
            self._dirty.discard(bucket)
            self._unwritten[bucket] = lines
        for name in lines:
            self._keys.pop(name, None)
        self._seen[bucket] = {name: _digest(raw) for name, raw in lines.items()}

    async def run(self) -> None:
        """The writer task: dirty buckets held, at most every `interval` (a pause is written at once
        by `write_now`)."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()
            await asyncio.sleep(self._interval)

    async def flush(self, buckets: Iterable[int] | None = None) -> bool:
        """Write the dirty buckets (of `buckets`) this replica holds; False when one could not be written."""
        async with self._write_lock:
            self._absorb()
            ok = True
            for bucket in sorted(self._dirty if buckets is None else set(buckets) & self._dirty):
                if not self.holds(bucket):
                    continue
                ok = await self._write(bucket) and ok
            return ok

    async def _write(self, bucket: int) -> bool:
        self._dirty.discard(bucket)
        for _ in range(3):
            payload = encode_bucket(self._lines.get(bucket, {}).values())
            try:
                if not self.holds(bucket):  # checked right before sending: never written by a former owner
                    self._dirty.add(bucket)
                    return False
                written = await self._put(bucket, payload)
            except KubeConflict:
                await self._merge_conflict(bucket)
                continue
            except (KubeError, KubeUnreachable) as exc:
                self._dirty.add(bucket)
                log.warning("sharding: cannot write shared state %s: %s", self.name_of(bucket), exc)
                self._observe(ok=False, size=len(payload))
                return False
            self._versions[bucket] = str((written.get("metadata") or {}).get("resourceVersion") or "")
            self.sizes[bucket] = len(payload)
            self.writes += 1
            self._observe(ok=True, size=len(payload))
            return True
        self._dirty.add(bucket)
        return False

    async def _merge_conflict(self, bucket: int) -> None:
        """Someone else wrote the bucket: keep the records of apps this replica does not know."""
        found, version = await self._read(bucket)
        lines = self._lines.setdefault(bucket, {})
        for name, raw in found.items():
            lines.setdefault(name, raw)
        self._versions[bucket] = version

    async def _put(self, bucket: int, payload: bytes) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name_of(bucket), "namespace": self.namespace,
                         "labels": {STATE_LABEL: self.prefix, BUCKET_LABEL: str(bucket)}},
            "binaryData": {STATE_KEY: base64.b64encode(payload).decode()},
        }
        version = self._versions.get(bucket, "")
        if version:
            body["metadata"]["resourceVersion"] = version
            try:
                return dict(await self._requests.request("PUT", f"{self._collection}/{self.name_of(bucket)}", body=body,
                                                     kind="ConfigMap"))
            except KubeNotFound:
                del body["metadata"]["resourceVersion"]
        return dict(await self._requests.request("POST", self._collection, body=body, kind="ConfigMap"))

    async def _read(self, bucket: int) -> tuple[dict[str, bytes], str]:
        try:
            found = await self._requests.request("GET", f"{self._collection}/{self.name_of(bucket)}", kind="ConfigMap")
        except KubeNotFound:
            return {}, ""
        return self._lines_of(found), str((found.get("metadata") or {}).get("resourceVersion") or "")

    def _lines_of(self, obj: dict[str, Any]) -> dict[str, bytes]:
        where = f"ConfigMap {self.namespace}/{(obj.get('metadata') or {}).get('name')}"
        data = (obj.get("binaryData") or {}).get(STATE_KEY)
        if not data:
            return {}
        try:
            return decode_lines(base64.b64decode(data), where=where)
        except (BucketError, ValueError) as exc:
            log.error("sharding: shared state unreadable, ignored: %s", exc)
            return {}

    def _observe(self, *, ok: bool, size: int) -> None:
        if self._observer is not None:
            self._observer.observe_shared_write(ok=ok, size=size)

    # ------------------------------------------------------------------ every replica: following

    async def follow(self) -> None:
        """List and watch every bucket's state; hand on what changed in the buckets not held here."""
        attempt = 0
        while True:
            try:
                version = await self._list()
                attempt = 0
                await self._watch(version)
            except WatchExpired:
                continue  # the version is too old: list again at once
            except (KubeError, KubeUnreachable) as exc:
                log.warning("sharding: following the shared state: %s", exc)
                await asyncio.sleep(WATCH_RETRY[min(attempt, len(WATCH_RETRY) - 1)])
                attempt += 1

    async def _list(self) -> str:
        listing = await self._requests.request("GET", self._collection, query={"labelSelector": self._selector},
                                           kind="ConfigMap")
        for item in listing.get("items") or []:
            await self._followed(item)
        return str((listing.get("metadata") or {}).get("resourceVersion") or "")

    async def _watch(self, version: str) -> None:
        resource = await self._kube.resource("v1", "ConfigMap")
        if resource is None:
            raise KubeError("the server has no ConfigMaps")
        async for event in self._kube.watch(resource, selector=self._selector, resource_version=version,
                                            namespace=self.namespace):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind in ("ADDED", "MODIFIED"):
                await self._followed(obj)

    @property
    def _selector(self) -> str:
        return f"{STATE_LABEL}={self.prefix}"

    async def _followed(self, obj: dict[str, Any]) -> None:
        try:
            bucket = int(((obj.get("metadata") or {}).get("labels") or {}).get(BUCKET_LABEL, ""))
        except ValueError:
            return
        if not 0 <= bucket < BUCKETS or bucket in self._lines:
            return  # held here: this replica is the writer
        lines = self._lines_of(obj)
        seen = self._seen.setdefault(bucket, {})
        changed = {name: raw for name, raw in lines.items() if seen.get(name) != _digest(raw)}
        for name in changed:
            seen[name] = _digest(changed[name])
        if changed:
            self._unwritten.pop(bucket, None)  # another owner wrote it: what this replica kept is overtaken
            if self.on_remote is not None:
                await self.on_remote(bucket, changed)


def _digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=16).digest()


def _never(bucket: int) -> bool:
    return False
