"""A throw-away custom resource kind for health tests: a CRD with a random group, and status writes."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

from agent.kube import KubeClient
from agent.model import KubeObject
from tests.integration.helpers import eventually


class CustomKind:
    """`Widget` in group `health-<random>.example.com`, namespaced, with a status subresource."""

    def __init__(self, kube: KubeClient) -> None:
        self.kube = kube
        self.group = f"health-{secrets.token_hex(4)}.example.com"
        self.api_version = f"{self.group}/v1"
        self.crd: KubeObject = {
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{self.group}"},
            "spec": {
                "group": self.group, "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                              "schema": {"openAPIV3Schema": {"type": "object",
                                                             "x-kubernetes-preserve-unknown-fields": True}}}],
            },
        }

    def widget(self, name: str, namespace: str, **spec: Any) -> KubeObject:
        return {"apiVersion": self.api_version, "kind": "Widget", "metadata": {"name": name, "namespace": namespace},
                "spec": spec}

    async def served(self) -> bool:
        """True once the API server serves Widgets (discovery refreshed until it does)."""
        if await self.kube.resource(self.api_version, "Widget") is None:
            self.kube.forget_discovery()
            return False
        return True

    async def set_status(self, obj: KubeObject, status: dict[str, Any]) -> None:
        """Write `status` through the status subresource, as the kind's controller would."""
        resource = await self.kube.resource(self.api_version, "Widget")
        assert resource is not None, "the CRD is not served yet"
        meta = obj["metadata"]
        await self.kube.request("PATCH", resource.path(meta["namespace"], meta["name"]) + "/status",
                                body={"status": status}, content_type="application/merge-patch+json")


@contextlib.asynccontextmanager
async def custom_kind(kube: KubeClient) -> AsyncIterator[CustomKind]:
    """Create the CRD, wait until it is served, and delete it afterwards."""
    kind = CustomKind(kube)
    await kube.apply(kind.crd)
    try:
        await eventually(kind.served, within=15, what=f"the API server to serve {kind.api_version} Widgets")
        yield kind
    finally:
        await kube.delete(kind.crd, propagation="Background")


def ready(status: str, reason: str, message: str = "") -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}
