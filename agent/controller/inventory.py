"""Rebuild what each app owns from the cluster, when the snapshot that remembered it is gone.

Without the snapshot the agent does not know which kinds an app used, and prune
candidates are looked for only among kinds it knows: an object of a kind that left
the render would be silently orphaned. So, once at start-up and before the first
reconcile of those apps, every listable resource type is listed once with the
selector `gitops-agent.io/app` (exists) across all namespaces, and the results are
grouped by the label's value. Only objects whose label and tracking annotation both
name the app count (the same rule pruning uses), so a copied label adds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from agent import APP_LABEL
from agent.engine.plan import owned_by
from agent.errors import KubeError
from agent.kube import ApiResource, KubeClient
from agent.model import InventoryEntry, KubeObject, ObjectRef
from agent.tasks import bounded

log = logging.getLogger(__name__)

CONCURRENT_LISTS = 8


@dataclass(frozen=True)
class RebuiltInventory:
    entries: dict[str, tuple[InventoryEntry, ...]]  # per app asked for; empty when it owns nothing
    lists: int = 0  # LIST requests made
    skipped: tuple[str, ...] = field(default_factory=tuple)  # group-versions or types that could not be read


def group_by_app(items: Iterable[KubeObject], apps: Collection[str]) -> dict[str, set[InventoryEntry]]:
    """Objects owned by one of `apps` (label and tracking id), grouped by app. Pure."""
    grouped: dict[str, set[InventoryEntry]] = {app: set() for app in apps}
    for item in items:
        app = str(((item.get("metadata") or {}).get("labels") or {}).get(APP_LABEL, ""))
        if app in grouped and owned_by(app, item):
            grouped[app].add(InventoryEntry(str(item["apiVersion"]), ObjectRef.of(item)))
    return grouped


async def rebuild_inventories(kube: KubeClient, apps: Collection[str], *,
                              namespaces: Iterable[str] = ()) -> RebuiltInventory:
    """One labelled LIST per listable resource type for all `apps` together.

    A group-version or type that cannot be read (an aggregated API that is down, a
    403) is skipped with a warning: what it holds stays unknown, which can only leave
    an object unpruned, never delete one. An unreachable API server raises.
    """
    resources, skipped = await _listable(kube)
    grouped: dict[str, set[InventoryEntry]] = {app: set() for app in apps}
    spread = tuple(namespaces)

    async def list_one(resource: ApiResource) -> None:
        try:
            found = await kube.list_labelled(resource.api_version, resource.kind, APP_LABEL, namespaces=spread)
        except KubeError as exc:
            skipped.append(f"{resource.kind}.{resource.api_version}: {exc}")
            return
        # Grouped type by type: only the entries are kept, not every object of the cluster at once.
        for app, entries in group_by_app(found, apps).items():
            grouped[app] |= entries

    await bounded(resources, list_one, limit=CONCURRENT_LISTS)
    for problem in skipped:
        log.warning("inventory rebuild skipped a resource type", extra={"error": problem})
    return RebuiltInventory({app: tuple(sorted(entries)) for app, entries in grouped.items()}, len(resources),
                            tuple(skipped))


async def _listable(kube: KubeClient) -> tuple[list[ApiResource], list[str]]:
    resources: list[ApiResource] = []
    skipped: list[str] = []
    for group_version in await kube.discovery.api_group_versions():
        try:
            resources.extend(await kube.listable_resources(group_version))
        except KubeError as exc:
            skipped.append(f"{group_version}: {exc}")
    return resources, skipped
