"""A cache of every object that carries the app label, kept current by one WATCH per kind.

With it, comparing an app with the cluster costs no API call: the live objects are
already here. A change to a managed object that the agent did not make itself is
reported to a listener at once (event-driven drift detection). Status-only changes
are not reported: the caller's digest leaves status out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from agent import APP_LABEL
from agent.errors import AgentError, KubeError, KubeForbidden, KubeUnreachable, WatchExpired
from agent.kube.client import KubeClient
from agent.kube.discovery import ApiResource
from agent.model import KubeObject, ObjectRef
from agent.multimap import Multimap
from agent.tasks import TaskSet

log = logging.getLogger(__name__)

Kind = tuple[str, str]  # (apiVersion, kind)
Digest = Callable[[KubeObject], str]
Listener = Callable[[str, ObjectRef, bool], None]  # app, object, whether its content (not just status) changed
RELIST_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)


@dataclass
class _KindWatch:
    resource: ApiResource
    api_version: str
    # Compact JSON, decoded on read: as nested dicts an object takes several times the memory,
    # and most cached objects are read only when their app is compared again.
    objects: dict[ObjectRef, str] = field(default_factory=dict)
    app_of: dict[ObjectRef, str] = field(default_factory=dict)  # the app label of each cached object
    by_app: Multimap[str, ObjectRef] = field(default_factory=Multimap)  # an index: apps poll often
    synced: asyncio.Event = field(default_factory=asyncio.Event)
    relists: int = 0
    forbidden: str = ""  # the API refused to list this kind in all namespaces: callers must LIST themselves


class WatchCache:
    def __init__(self, kube: KubeClient, *, digest: Digest, on_change: Listener | None = None,
                 keep_managed_fields: bool = False) -> None:
        self._kube = kube
        self._digest = digest
        self._on_change = on_change
        self._keep_managed_fields = keep_managed_fields
        self._kinds: dict[Kind, _KindWatch] = {}
        self._digests: dict[ObjectRef, str] = {}
        self._epochs: dict[str, int] = {}
        self._touches: dict[str, int] = {}
        self._tasks = TaskSet()
        self._lock = asyncio.Lock()
        self._retry = asyncio.Event()

    # ------------------------------------------------------------------ reading

    async def track(self, api_version: str, kind: str, *, wait: float = 10.0) -> bool:
        """Start watching a kind (once) and wait until its first LIST is in; False if the kind is unknown."""
        key = (api_version, kind)
        known = self._kinds.get(key)
        if known is not None and known.synced.is_set():  # every reconcile asks: answer without waiting
            return not known.forbidden
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
        return not watch.forbidden

    def set_listener(self, listener: Listener) -> None:
        self._on_change = listener

    def retry_now(self) -> None:
        """The server answers again: watches waiting to list again do so now, not after their backoff."""
        self._retry.set()
        self._retry.clear()  # the waiters are already woken; later failures back off again

    def synced(self, kinds: Iterable[Kind]) -> bool:
        """Whether every kind is watched and listed (so `objects` is the whole truth for them)."""
        return all(key in self._kinds and self._kinds[key].synced.is_set() and not self._kinds[key].forbidden
                   for key in kinds)

    def epoch(self, app: str) -> int:
        """Counts changes to the content of the app's objects (not status): equal epochs, nothing changed."""
        return self._epochs.get(app, 0)

    def touches(self, app: str) -> int:
        """Counts every change to the app's objects, status included: equal counts, the same objects."""
        return self._touches.get(app, 0)

    def objects(self, app: str, kinds: Iterable[Kind]) -> dict[ObjectRef, KubeObject]:
        """Every cached object of these kinds labelled for `app`."""
        found: dict[ObjectRef, KubeObject] = {}
        for key in kinds:
            watch = self._kinds.get(key)
            if watch is not None:
                found.update((ref, json.loads(watch.objects[ref])) for ref in watch.by_app.get(app))
        return found

    def get(self, api_version: str, ref: ObjectRef) -> KubeObject | None:
        watch = self._kinds.get((api_version, ref.kind))
        stored = watch.objects.get(ref) if watch else None
        return json.loads(stored) if stored is not None else None

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
            except WatchExpired:
                watch.relists += 1
                log.info("watch of %s expired; listing again", watch.resource.kind)
            except KubeForbidden as exc:
                if not watch.synced.is_set():
                    # Namespaced RBAC: the reconciler lists per namespace instead of watching.
                    watch.forbidden = exc.message
                    watch.synced.set()
                    log.info("not watching %s: %s", watch.resource.kind, exc.message)
                    return
                failures = await self._back_off(watch, exc, failures)
            except (KubeError, KubeUnreachable) as exc:
                failures = await self._back_off(watch, exc, failures)

    async def _back_off(self, watch: _KindWatch, exc: AgentError, failures: int) -> int:
        """Wait before listing again after a failed list or watch; returns the failures so far."""
        delay = RELIST_BACKOFF[min(failures, len(RELIST_BACKOFF) - 1)]
        watch.relists += 1
        log.warning("watch of %s failed (%s); listing again in %.1fs", watch.resource.kind, exc, delay)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._retry.wait(), delay)
        return failures + 1

    async def _list(self, watch: _KindWatch) -> str:
        """Every labelled object of the kind, page by page, each kept as compact JSON at once (never
        all of them as objects); then what changed since the last list is reported."""
        fresh: dict[ObjectRef, tuple[str, str, str]] = {}  # ref → (compact JSON, app, digest)
        version = ""
        async for page in self._kube.pages(watch.resource, selector=APP_LABEL):
            for item in page.items:
                item["apiVersion"], item["kind"] = watch.api_version, watch.resource.kind
                slim = self._slim(item)
                fresh[ObjectRef.of(slim)] = (_compact(slim), _app_of(slim), self._digest(slim))
            version = page.resource_version
        relist = watch.synced.is_set()  # the first list is what the cache starts from, not a change
        for ref in set(watch.objects) - set(fresh):
            self._changed(ref, None, watch.app_of[ref], notify=relist)
        previous_apps = watch.app_of
        watch.objects, watch.app_of, watch.by_app = {}, {}, Multimap()
        for ref, (text, app, digest) in fresh.items():
            before = previous_apps.get(ref)
            if before and before != app:
                self._moved(ref, before)
            self._changed(ref, digest, app, notify=relist)
            watch.objects[ref], watch.app_of[ref] = text, app
            watch.by_app.add(app, ref)
        watch.synced.set()
        return version

    async def _follow(self, watch: _KindWatch, version: str) -> str:
        async for event in self._kube.watch(watch.resource, selector=APP_LABEL, resource_version=version):
            kind, obj = event.get("type"), event.get("object") or {}
            version = str((obj.get("metadata") or {}).get("resourceVersion", version))
            if kind == "BOOKMARK":
                continue
            obj["apiVersion"], obj["kind"] = watch.api_version, watch.resource.kind
            ref = ObjectRef.of(obj)
            watch.objects.pop(ref, None)
            previous_app = watch.app_of.pop(ref, None)
            if previous_app is not None:
                watch.by_app.discard(previous_app, ref)
            app = _app_of(obj)
            if previous_app and previous_app != app:
                self._moved(ref, previous_app)
            if kind == "DELETED":
                self._changed(ref, None, app)
            else:
                slim = self._slim(obj)
                watch.objects[ref], watch.app_of[ref] = _compact(slim), app
                watch.by_app.add(app, ref)
                self._changed(ref, self._digest(slim), app)
        return version

    def _slim(self, obj: KubeObject) -> KubeObject:
        # Keep what diffing and health need; managedFields are large and only some ignore rules read them.
        meta: dict[str, Any] = obj.get("metadata") or {}
        if not self._keep_managed_fields:
            meta.pop("managedFields", None)
        (meta.get("annotations") or {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
        return obj

    def _moved(self, ref: ObjectRef, app: str) -> None:
        """The object's app label no longer names `app` (another app took it over): for that app it is gone."""
        self._touches[app] = self._touches.get(app, 0) + 1
        self._epochs[app] = self._epochs.get(app, 0) + 1
        if self._on_change is not None:
            self._on_change(app, ref, True)

    def _changed(self, ref: ObjectRef, digest: str | None, app: str, *, notify: bool = True) -> None:
        """Count and report a change to an object whose content now has `digest` (None: deleted); the
        agent's own writes (see note_write) are not reported as drift."""
        previous = self._digests.get(ref)
        if digest is None:
            self._digests.pop(ref, None)
            digest = ""
        else:
            self._digests[ref] = digest
        if not app:
            return
        self._touches[app] = self._touches.get(app, 0) + 1
        if previous != digest:
            self._epochs[app] = self._epochs.get(app, 0) + 1
        # A first sight is not drift: it may be the agent's own create, seen before note_write.
        content_changed = previous is not None and previous != digest
        if notify and self._on_change is not None:
            self._on_change(app, ref, content_changed)


def _compact(obj: KubeObject) -> str:
    return json.dumps(obj, separators=(",", ":"))


def _app_of(obj: KubeObject) -> str:
    return str(((obj.get("metadata") or {}).get("labels") or {}).get(APP_LABEL) or "")

