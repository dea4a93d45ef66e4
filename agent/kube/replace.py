"""Writes other than server-side apply: `Replace=true` (`kubectl replace` / `kubectl create`).

A replace is a PUT of the whole object: fields it does not name are dropped, whoever set
them. `validate` maps to the API's field validation: Strict (kubectl's default) refuses
unknown or duplicate fields; `Validate=false` makes it Ignore. (A server-side apply always
refuses unknown fields, whatever this says.)
"""

from __future__ import annotations

from agent import FIELD_MANAGER
from agent.errors import KubeInvalid
from agent.kube.client import KubeClient
from agent.kube.discovery import ApiResource
from agent.model import KubeObject, ObjectRef


async def _resource(kube: KubeClient, obj: KubeObject) -> ApiResource:
    resource = await kube.resource(obj["apiVersion"], obj["kind"])
    if resource is None:
        raise KubeInvalid(f"the server has no resource for {obj['kind']} in {obj['apiVersion']}",
                          ref=ObjectRef.of(obj))
    return resource


def _query(validate: bool) -> dict[str, str]:
    return {"fieldManager": FIELD_MANAGER, "fieldValidation": "Strict" if validate else "Ignore"}


async def create(kube: KubeClient, obj: KubeObject, *, validate: bool = True) -> KubeObject:
    """POST the object; a KubeConflict when it exists already."""
    resource = await _resource(kube, obj)
    result: KubeObject = await kube.request(
        "POST", resource.path(obj["metadata"].get("namespace", "")), query=_query(validate), body=obj,
        kind=resource.kind, ref=ObjectRef.of(obj), gated=True,
    )
    return result


async def replace(kube: KubeClient, obj: KubeObject, *, resource_version: str = "",
                  validate: bool = True) -> KubeObject:
    """PUT the object over the live one: unconditionally, or only over `resource_version` when given."""
    resource = await _resource(kube, obj)
    meta = obj["metadata"]
    body = obj
    if resource_version:
        body = {**obj, "metadata": {**meta, "resourceVersion": resource_version}}
    result: KubeObject = await kube.request(
        "PUT", resource.path(meta.get("namespace", ""), meta["name"]), query=_query(validate), body=body,
        kind=resource.kind, ref=ObjectRef.of(obj), gated=True,
    )
    return result
