"""The watch cache against the real API server: listing, events, drift reports, relist after 410."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import pytest

from agent.kube import KubeClient
from agent.kube.watch import WatchCache
from agent.model import KubeObject, ObjectRef
from tests.integration.helpers import eventually
from tests.support.cluster import LocalCluster


def digest(obj: KubeObject) -> str:
    """Content without server bookkeeping, as the controller's digest sees it."""
    meta = {k: v for k, v in obj["metadata"].items()
            if k not in ("resourceVersion", "managedFields", "generation", "uid", "creationTimestamp")}
    content = {k: v for k, v in obj.items() if k not in ("status", "metadata")}
    return hashlib.sha256(json.dumps([meta, content], sort_keys=True).encode()).hexdigest()


def labelled(name: str, namespace: str, app: str, data: dict[str, str]) -> KubeObject:
    return {"apiVersion": "v1", "kind": "ConfigMap", "data": data,
            "metadata": {"name": name, "namespace": namespace, "labels": {"gitops-agent.io/app": app}}}


@pytest.fixture
async def cache_and_changes(kube: KubeClient) -> Any:
    changes: list[tuple[str, ObjectRef]] = []
    def listener(app: str, ref: ObjectRef, content_changed: bool) -> None:
        if content_changed:  # status-only updates and the agent's own writes are not drift
            changes.append((app, ref))

    cache = WatchCache(kube, digest=digest, on_change=listener)
    yield cache, changes
    await cache.close()


async def test_labelled_objects_appear_and_outside_changes_are_reported(
    cache_and_changes: Any, kube: KubeClient, namespace: str
) -> None:
    cache, changes = cache_and_changes
    app = f"w-{secrets.token_hex(3)}"
    await kube.apply(labelled("before", namespace, app, {"k": "1"}))
    assert await cache.track("v1", "ConfigMap")
    assert set(cache.objects(app, [("v1", "ConfigMap")])) == {ObjectRef("", "ConfigMap", namespace, "before")}

    written = await kube.apply(labelled("ours", namespace, app, {"k": "1"}))
    cache.note_write(written)
    ours = ObjectRef("", "ConfigMap", namespace, "ours")
    await eventually(lambda: _has(cache, app, ours), within=5, what="our object in the cache")

    outside = labelled("ours", namespace, app, {"k": "changed"})
    await kube.request("PATCH", f"/api/v1/namespaces/{namespace}/configmaps/ours", body={"data": {"k": "changed"}},
                       content_type="application/merge-patch+json")
    await eventually(lambda: (app, ours) in changes, within=5, what="the outside change to be reported")
    assert cache.get("v1", ours)["data"] == outside["data"]  # type: ignore[index]
    assert changes.count((app, ours)) == 1, "our own write must not count as drift"

    await kube.delete(labelled("before", namespace, app, {}))
    before = ObjectRef("", "ConfigMap", namespace, "before")
    await eventually(lambda: (app, before) in changes, within=10, what="the deletion to be reported")
    await eventually(lambda: not _has(cache, app, before), within=10, what="the deleted object to leave the cache")


async def test_unlabelled_objects_are_not_cached(cache_and_changes: Any, kube: KubeClient, namespace: str) -> None:
    cache, _ = cache_and_changes
    await kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain", "namespace": namespace}})
    assert await cache.track("v1", "ConfigMap")
    assert cache.get("v1", ObjectRef("", "ConfigMap", namespace, "plain")) is None
    assert not await cache.track("example.invalid/v1", "Nothing")


async def test_an_expired_watch_lists_again(cache_and_changes: Any, cluster: LocalCluster, kube: KubeClient,
                                           namespace: str) -> None:
    cache, _ = cache_and_changes
    app = f"w-{secrets.token_hex(3)}"
    real_list = WatchCache._list
    calls = 0

    async def stale_first(self: WatchCache, watch: Any) -> str:
        nonlocal calls
        calls += 1
        version = await real_list(self, watch)
        return "1" if calls == 1 else version  # compacted away: the watch from it gets 410 Gone

    # PodTemplates are watched from etcd itself (no watch cache in the API server, see
    # scripts/local-cluster), so once etcd is compacted a watch from version 1 has expired.
    cluster.compact_etcd()
    cache._list = stale_first.__get__(cache)  # type: ignore[method-assign]
    assert await cache.track("v1", "PodTemplate")
    await eventually(lambda: cache.stats()["relists"] >= 1, within=5, what="a relist after 410")
    await kube.apply(pod_template("after", namespace, app))
    ref = ObjectRef("", "PodTemplate", namespace, "after")
    await eventually(lambda: _has(cache, app, ref), within=5, what="events after the relist")


def pod_template(name: str, namespace: str, app: str) -> KubeObject:
    return {"apiVersion": "v1", "kind": "PodTemplate",
            "metadata": {"name": name, "namespace": namespace, "labels": {"gitops-agent.io/app": app}},
            "template": {"spec": {"containers": [{"name": "main", "image": "registry.example.com/app:v1"}]}}}


def _has(cache: WatchCache, app: str, ref: ObjectRef) -> bool:
    return ref in cache.objects(app, [("v1", ref.kind)])
