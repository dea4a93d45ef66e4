"""Proof that the test cluster is a real control plane, not a stub."""

from __future__ import annotations

from typing import Any

import yaml

from agent.kube import KubeClient
from tests.integration.helpers import deployment, eventually


async def test_deployment_with_two_replicas_becomes_available(kube: KubeClient, namespace: str) -> None:
    obj = yaml.safe_load(deployment("proof", replicas=2))
    obj["metadata"]["namespace"] = namespace
    await kube.apply(obj)

    async def available() -> dict[str, Any] | None:
        live = await kube.get(obj)
        assert live is not None
        conditions = {c["type"]: c["status"] for c in live.get("status", {}).get("conditions", [])}
        return live if conditions.get("Available") == "True" and live["status"].get("readyReplicas") == 2 else None

    live = await eventually(available, within=30, what="Deployment proof to become Available")
    assert live["status"]["availableReplicas"] == 2
    # The controller-manager made a ReplicaSet, the scheduler bound its pods to kwok nodes, kwok made them Ready.
    pods = await kube.request("GET", f"/api/v1/namespaces/{namespace}/pods")
    assert len(pods["items"]) == 2
    assert all(p["spec"].get("nodeName", "").startswith("kwok-node-") for p in pods["items"])
    assert all(p["status"]["phase"] == "Running" for p in pods["items"])
