"""Write one desired object, as its sync options (the object's, then the app's) say, like Argo CD:

    default                   server-side apply, field manager `gitops-agent`, conflicts forced
    Force=true                the same; when the API refuses a change to an immutable field,
                              delete the object and apply it again (`kubectl apply --force`)
    Replace=true              `kubectl replace`: PUT the whole object (POST when it is new), so
                              fields it does not name are dropped whoever set them
    Replace=true,Force=true   `kubectl replace --force`: delete and create it again
    Validate=false            with Replace=true: unknown fields are dropped, not refused

A Namespace or CustomResourceDefinition is never deleted to be replaced (that would take
everything in it along): with Replace=true it is updated over its live version.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.engine.fingerprint import resource_version
from agent.engine.progress import SyncFailed
from agent.errors import KubeConflict, KubeInvalid
from agent.kube import Deleted, KubeClient, preconditions
from agent.kube.replace import create, replace
from agent.model import KubeObject, ObjectRef, PlannedObject, SyncPolicy

KEPT_ON_REPLACE = frozenset({"Namespace", "CustomResourceDefinition"})
GONE_POLL = 0.2


@dataclass
class ObjectWriter:
    kube: KubeClient
    policy: SyncPolicy
    audit: Callable[[str, ObjectRef, str], None]  # message, object, action

    async def write(self, obj: PlannedObject) -> KubeObject:
        options = obj.options | self.policy.options
        force = "Force=true" in options
        if "Replace=true" in options:
            return await self._replace(obj, force=force, validate="Validate=false" not in options)
        try:
            return await self.kube.apply(obj.desired)
        except KubeInvalid as exc:
            if not force or obj.live is None or "immutable" not in exc.message:
                raise
        # An immutable field changed and the object allows it: delete, then apply again.
        return await self._recreate(obj, lambda: self.kube.apply(obj.desired))

    async def _replace(self, obj: PlannedObject, *, force: bool, validate: bool) -> KubeObject:
        if obj.live is None:
            return await create(self.kube, obj.desired, validate=validate)
        kept = obj.ref.kind in KEPT_ON_REPLACE
        if force and not kept:
            return await self._recreate(obj, lambda: create(self.kube, obj.desired, validate=validate))
        return await replace(self.kube, obj.desired, validate=validate,
                             resource_version=resource_version(obj.live) if kept else "")

    async def _recreate(self, obj: PlannedObject, write: Callable[[], Awaitable[KubeObject]]) -> KubeObject:
        # The delete is in the background; the create is refused (409) until the old object is gone.
        assert obj.live is not None
        self.audit("replacing", obj.ref, "replaced")
        # Only the object that was read (its uid; its content is being replaced anyway).
        deleted = await self.kube.delete(obj.live, propagation="Background",
                                         only_if=preconditions(obj.live, version=False))
        if deleted is Deleted.CHANGED:
            raise KubeConflict("not replaced: the object was deleted and created again since it was read "
                               "(uid precondition failed)", ref=obj.ref)
        deadline = time.monotonic() + min(self.policy.health_timeout, 60.0)
        while await self.kube.get(obj.desired) is not None:
            if time.monotonic() > deadline:
                raise SyncFailed(f"{obj.ref}: still present after deleting it for replacement")
            await asyncio.sleep(GONE_POLL)
        return await write()
