"""The objects of one kind in one namespace that a label selector picks, kept current by one WATCH.

The watch cache (agent.kube.watch) keeps every object the agent manages; this keeps a few
objects the agent reads as configuration (Argo CD's repository Secrets), so that a changed
Secret is known at once and no reconcile lists them. After every change the listener gets the
whole current set. Lost watches list again, with backoff, as the watch cache's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from agent.errors import KubeError, KubeUnreachable, WatchExpired
from agent.kube.client import KubeClient
from agent.kube.discovery import ApiResource
from agent.kube.watch import RELIST_BACKOFF
from agent.model import KubeObject

log = logging.getLogger(__name__)

Objects = Callable[[list[KubeObject]], None]


class SelectedWatch:
    def __init__(self, kube: KubeClient, *, api_version: str, kind: str, namespace: str, selector: str,
                 on_change: Objects) -> None:
        self._kube, self._api_version, self._kind = kube, api_version, kind
        self._namespace, self._selector, self._on_change = namespace, selector, on_change
        self._objects: dict[str, KubeObject] = {}  # by name
        self.synced = asyncio.Event()  # the first LIST is in (or failed: see `failure`)
        self.failure = ""  # why the last LIST or WATCH failed ("" while it works)

    @property
    def where(self) -> str:
        return f"{self._kind} in namespace {self._namespace} ({self._selector})"

    async def run(self) -> None:
        """List, then follow; forever (until cancelled)."""
        resource = await self._resource()
        failures = 0
        while True:
            try:
                version = await self._list(resource)
                failures = 0
                while True:
                    version = await self._follow(resource, version)
            except WatchExpired:
                continue
            except (KubeError, KubeUnreachable) as exc:
                self.failure = str(exc)
                self.synced.set()  # waiting callers go on with what is known
                delay = RELIST_BACKOFF[min(failures, len(RELIST_BACKOFF) - 1)]
                log.warning("cannot watch %s (%s); listing again in %.1fs", self.where, exc, delay)
                failures += 1
                await asyncio.sleep(delay)

    async def _resource(self) -> ApiResource:
        delay = 0
        while True:
            with contextlib.suppress(KubeError, KubeUnreachable):
                resource = await self._kube.resource(self._api_version, self._kind)
                if resource is not None:
                    return resource
            self.synced.set()
            await asyncio.sleep(RELIST_BACKOFF[min(delay, len(RELIST_BACKOFF) - 1)])
            delay += 1

    async def _list(self, resource: ApiResource) -> str:
        listing = await self._kube.request("GET", resource.path(self._namespace),
                                           query={"labelSelector": self._selector}, kind=self._kind)
        self._objects = {str((item.get("metadata") or {}).get("name", "")): item
                         for item in listing.get("items") or []}
        self.failure = ""
        self._changed()
        self.synced.set()
        return str((listing.get("metadata") or {}).get("resourceVersion", ""))

    async def _follow(self, resource: ApiResource, version: str) -> str:
        async for event in self._kube.watch(resource, selector=self._selector, resource_version=version,
                                            namespace=self._namespace):
            kind, obj = event.get("type"), event.get("object") or {}
            version = str((obj.get("metadata") or {}).get("resourceVersion", version))
            if kind == "BOOKMARK":
                continue
            name = str((obj.get("metadata") or {}).get("name", ""))
            if kind == "DELETED":
                self._objects.pop(name, None)
            else:
                self._objects[name] = obj
            self._changed()
        return version

    def _changed(self) -> None:
        self._on_change([self._objects[name] for name in sorted(self._objects)])
