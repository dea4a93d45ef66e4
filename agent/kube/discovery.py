"""Discovery: which REST resource serves each kind, and which resources can be listed.

Cached per group-version for the life of the client, until `forget` (after CRDs changed); a
kind not (yet) known is asked about once more, in case its CRD arrived since.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from agent.errors import KubeNotFound

Get = Callable[[str], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class ApiResource:
    """One REST resource as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        return f"{base}/{quote(name, safe='')}" if name else base


class Discovery:
    """Discovery through `get` (a GET of a path, answered as JSON)."""

    def __init__(self, get: Get) -> None:
        self._get = get
        self._resources: dict[tuple[str, str], ApiResource] = {}
        self._discovered: set[str] = set()
        self._lock = asyncio.Lock()
        self._listable: dict[str, list[ApiResource]] = {}  # group-version → listable resources

    async def resource(self, api_version: str, kind: str) -> ApiResource | None:
        """Discovery for one kind; refreshed once when the kind is not (yet) known."""
        key = (api_version, kind)
        if key not in self._resources:
            await self._discover(api_version, refresh=api_version in self._discovered)
        return self._resources.get(key)

    async def _discover(self, api_version: str, *, refresh: bool) -> None:
        async with self._lock:
            if api_version in self._discovered and not refresh:
                return
            try:
                await self._read_group_version(api_version)
            except KubeNotFound:
                self._discovered.add(api_version)

    async def _read_group_version(self, group_version: str) -> None:
        """Discovery of one group-version: its resources (no subresources), and which can be listed."""
        path = f"/apis/{group_version}" if "/" in group_version else f"/api/{group_version}"
        listing = await self._get(path)
        group, _, version = group_version.rpartition("/")
        listable = []
        for item in listing.get("resources") or []:
            if "/" in item["name"]:
                continue  # subresources such as deployments/scale
            resource = ApiResource(group, version, item["kind"], item["name"], bool(item["namespaced"]))
            self._resources[(group_version, item["kind"])] = resource
            if "list" in (item.get("verbs") or []):
                listable.append(resource)
        self._listable[group_version] = listable
        self._discovered.add(group_version)

    def forget(self) -> None:
        """Forget discovered resources, e.g. after CRDs were created or changed."""
        self._resources.clear()
        self._discovered.clear()
        self._listable.clear()

    async def api_group_versions(self) -> list[str]:
        """Every group-version the server serves: the core versions, then each group's preferred one."""
        core = await self._get("/api")
        groups = await self._get("/apis")
        versions = [str(version) for version in core.get("versions") or []]
        for group in groups.get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("groupVersion")
            if preferred:
                versions.append(str(preferred))
        return versions

    async def listable_resources(self, group_version: str) -> list[ApiResource]:
        """The resources of one group-version that can be listed (no subresources); cached until
        `forget`. Raises a KubeError when the group-version cannot be read (an
        aggregated API that is down answers 503)."""
        if group_version not in self._listable:
            await self._read_group_version(group_version)
        return list(self._listable[group_version])
