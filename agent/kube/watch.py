"""A cache of every object that carries the app label, kept current by one WATCH per kind.

With it, comparing an app with the cluster costs no API call: the live objects are
already here. A change to a managed object that the agent did not make itself is
reported to a listener at once (event-driven drift detection). Status-only changes
are not reported: the caller's digest leaves status out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agent import APP_LABEL
from agent.errors import KubeError, KubeUnreachable
from agent.kube.client import ApiResource, KubeClient
from agent.model import KubeObject, ObjectRef
from agent.tasks import TaskSet

log = logging.getLogger(__name__)

Kind = tuple[str, str]  # (apiVersion, kind)
Digest = Callable[[KubeObject], str]
Listener = Callable[[str, ObjectRef], None]
RELIST_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass
class _KindWatch:
    resource: ApiResource
    api_version: str
    objects: dict[ObjectRef, KubeObject] = field(default_factory=dict)
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    relists: int = 0


class WatchCache:
    def __init__(self, kube: KubeClient, *, digest: Digest, on_change: Listener | None = None,
                 keep_managed_fields: bool = False) -> None:
        self._kube = kube
        self._digest = digest
        self._on_change = on_change
        self._keep_managed_fields = keep_managed_fields
        self._kinds: dict[Kind, _KindWatch] = {}
        self._digests: dict[ObjectRef, str] = {}
        self._tasks = TaskSet()
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ reading

    async def track(self, api_version: str, kind: str, *, wait: float = 10.0) -> bool:
        """Start watching a kind (once) and wait until its first LIST is in; False if the kind is unknown."""
        key = (api_version, kind)
        async with self._lock:
            watch = self._kinds.get(key)
            if watch is None:
                resource = await self._kube.resource(api_version, kind)
                if resource is None:
                    return False
                watch = self._kinds[key] = _KindWatch(resource, api_version)
                self._tasks.spawn(f"watch:{api_version}/{kind}", self._run(watch))
        try:
            await asyncio.wait_for(watch.synced.wait(), timeout=wait)
        except TimeoutError:
            return False
        return True

    def synced(self, kinds: Iterable[Kind]) -> bool:
        return all(key in self._kinds and self._kinds[key].synced.is_set() for key in kinds)

    def objects(self, app: str, kinds: Iterable[Kind]) -> dict[ObjectRef, KubeObject]:
        """Every cached object of these kinds labelled for `app`."""
        found: dict[ObjectRef, KubeObject] = {}
        for key in kinds:
            watch = self._kinds.get(key)
            if watch is None:
                continue
            for ref, obj in watch.objects.items():
                if ((obj.get("metadata") or {}).get("labels") or {}).get(APP_LABEL) == app:
                    found[ref] = obj
        return found

    def get(self, api_version: str, ref: ObjectRef) -> KubeObject | None:
        watch = self._kinds.get((api_version, ref.kind))
        return watch.objects.get(ref) if watch else None

    def note_write(self, obj: KubeObject) -> None:
        """The agent just wrote this object: its watch event is not drift."""
        self._digests[ObjectRef.of(obj)] = self._digest(obj)

    def stats(self) -> dict[str, int]:
        return {"kinds": len(self._kinds), "objects": sum(len(w.objects) for w in self._kinds.values()),
                "relists": sum(w.relists for w in self._kinds.values())}

    async def close(self) -> None:
        await self._tasks.shutdown()

    # ------------------------------------------------------------------ watching

    async def _run(self, watch: _KindWatch) -> None:
        failures = 0
        while True:
            try:
                version = await self._list(watch)
                failures = 0
                while True:  # a watch the server ended normally resumes from the last version seen
                    version = await self._follow(watch, version)
            except _Expired:
                watch.relists += 1
                log.info("watch of %s expired; listing again", watch.resource.kind)
            except (KubeUnreachable, KubeError) as exc:
                delay = RELIST_BACKOFF[min(failures, len(RELIST_BACKOFF) - 1)]
                failures += 1
                watch.relists += 1
                log.warning("watch of %s failed (%s); listing again in %.1fs", watch.resource.kind, exc, delay)
                await asyncio.sleep(delay)

    async def _list(self, watch: _KindWatch) -> str:
        listing = await self._kube.request("GET", watch.resource.path(), query={"labelSelector": APP_LABEL},
                                           kind=watch.resource.kind)
        fresh: dict[ObjectRef, KubeObject] = {}
        for item in listing.get("items") or []:
            item["apiVersion"], item["kind"] = watch.api_version, watch.resource.kind
            fresh[ObjectRef.of(item)] = self._slim(item)
        for ref in set(watch.objects) - set(fresh):
            self._changed(ref, None, _app_of(watch.objects[ref]))
        for ref, obj in fresh.items():
            self._changed(ref, obj, _app_of(obj))
        watch.objects = fresh
        watch.synced.set()
        return str((listing.get("metadata") or {}).get("resourceVersion", ""))

    async def _follow(self, watch: _KindWatch, version: str) -> str:
        async for event in self._kube.watch(watch.resource, selector=APP_LABEL, resource_version=version):
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == 410:
                    raise _Expired()
                raise KubeError(str(obj.get("message", "watch error")), status=int(obj.get("code") or 0))
            version = str((obj.get("metadata") or {}).get("resourceVersion", version))
            if kind == "BOOKMARK":
                continue
            obj["apiVersion"], obj["kind"] = watch.api_version, watch.resource.kind
            ref = ObjectRef.of(obj)
            if kind == "DELETED":
                watch.objects.pop(ref, None)
                self._changed(ref, None, _app_of(obj))
            else:
                watch.objects[ref] = self._slim(obj)
                self._changed(ref, watch.objects[ref], _app_of(obj))
        return version

    def _slim(self, obj: KubeObject) -> KubeObject:
        # Keep what diffing and health need; managedFields are large and only some ignore rules read them.
        meta: dict[str, Any] = obj.get("metadata") or {}
        if not self._keep_managed_fields:
            meta.pop("managedFields", None)
        (meta.get("annotations") or {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
        return obj

    def _changed(self, ref: ObjectRef, obj: KubeObject | None, app: str) -> None:
        """Report a change the agent did not make itself; the first sight of an object is not one."""
        digest = self._digest(obj) if obj is not None else ""
        previous = self._digests.get(ref)
        if obj is None:
            self._digests.pop(ref, None)
        else:
            self._digests[ref] = digest
        if previous is not None and previous != digest and app and self._on_change is not None:
            self._on_change(app, ref)


def _app_of(obj: KubeObject) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(APP_LABEL) or "")


class _Expired(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""
