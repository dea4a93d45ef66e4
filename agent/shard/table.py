"""The owner table in the cluster: one ConfigMap, `<sharding_name>-shards`, written with optimistic concurrency.

    data.owners   {"revision": N, "owners": ["<identity>" or "", ... one per bucket]}

Every write names the resourceVersion it read (PUT), or creates the object (POST): of two
replicas writing from the same version, exactly one succeeds and the other gets 409 and
decides again on a fresh read. The revision moves on every write, so a write that records
the same owners again (a claim renewed after a lapse) still moves the resourceVersion and
makes any concurrent claim based on the older version fail.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from agent.errors import KubeNotFound
from agent.leader import LeaseApi
from agent.shard.buckets import BUCKETS, OwnerTable

CONFIGMAPS = "/api/v1/namespaces/{namespace}/configmaps"
TABLE_KEY = "owners"
SHARD_LABEL = "gitops-agent.io/shards-of"


class TableError(ValueError):
    """The owner table holds something this version cannot read."""


@dataclass(frozen=True)
class ReadTable:
    table: OwnerTable
    resource_version: str  # "" when the object does not exist yet


def parse_table(data: dict[str, Any], *, where: str) -> OwnerTable:
    try:
        value = json.loads(str((data or {}).get(TABLE_KEY) or "{}"))
        owners = value.get("owners", [""] * BUCKETS)
        revision = int(value.get("revision", 0))
    except (ValueError, AttributeError, TypeError) as exc:
        raise TableError(f"{where}: data.{TABLE_KEY} is not an owner table: {exc}") from exc
    if not isinstance(owners, list) or len(owners) != BUCKETS or not all(isinstance(o, str) for o in owners):
        raise TableError(f"{where}: data.{TABLE_KEY} must list {BUCKETS} owners")
    return OwnerTable(tuple(owners), revision)


class OwnerTableStore:
    def __init__(self, kube: LeaseApi, *, namespace: str, prefix: str) -> None:
        self._kube = kube
        self.namespace, self.prefix = namespace, prefix
        self.name = f"{prefix}-shards"
        self._collection = CONFIGMAPS.format(namespace=quote(namespace, safe=""))

    @property
    def where(self) -> str:
        return f"ConfigMap {self.namespace}/{self.name}"

    async def read(self) -> ReadTable:
        try:
            found = await self._kube.request("GET", f"{self._collection}/{self.name}", kind="ConfigMap")
        except KubeNotFound:
            return ReadTable(OwnerTable(), "")
        return ReadTable(parse_table(found.get("data") or {}, where=self.where),
                         str((found.get("metadata") or {}).get("resourceVersion") or ""))

    async def write(self, table: OwnerTable, *, resource_version: str) -> ReadTable:
        """Record `table`, only over the version read; KubeConflict when it moved meanwhile."""
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": self.name, "namespace": self.namespace, "labels": {SHARD_LABEL: self.prefix}},
            "data": {TABLE_KEY: json.dumps({"revision": table.revision, "owners": list(table.owners)},
                                           separators=(",", ":"))},
        }
        if resource_version:
            body["metadata"]["resourceVersion"] = resource_version
            written = await self._kube.request("PUT", f"{self._collection}/{self.name}", body=body, kind="ConfigMap")
        else:
            written = await self._kube.request("POST", self._collection, body=body, kind="ConfigMap")
        return ReadTable(table, str((written.get("metadata") or {}).get("resourceVersion") or ""))
