"""The Lease protocol against the real API server: racing candidates, release, and the write gate."""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter

import pytest

from agent.config import LeaderElectionSettings
from agent.errors import NotLeader
from agent.kube import KubeClient
from agent.leader import LeaderElector, LeaseRecord
from tests.support.cluster import LocalCluster

SETTINGS = LeaderElectionSettings(enabled=True, lease_duration=4.0, renew_deadline=3.0, retry_period=0.5)


def candidate(kube: KubeClient, namespace: str, lease: str, identity: str) -> LeaderElector:
    async def stopped() -> None:
        return None

    settings = LeaderElectionSettings(**{**SETTINGS.__dict__, "name": lease})
    return LeaderElector(kube, settings, namespace=namespace, identity=identity, on_started=lambda: None,
                         on_stopped=stopped)


async def test_candidates_racing_for_a_new_or_released_lease_exactly_one_wins(kube: KubeClient,
                                                                              namespace: str) -> None:
    for round_ in range(5):
        lease = f"race-{round_}-{secrets.token_hex(2)}"
        electors = [candidate(kube, namespace, lease, f"candidate-{i}") for i in range(3)]
        won = await asyncio.gather(*(e._attempt() for e in electors))  # all create at once: one POST wins
        assert sorted(won) == [False, False, True], won
        winner = electors[won.index(True)]
        winner._leading = True
        await winner.release()
        again = await asyncio.gather(*(e._attempt() for e in electors))  # all PUT one resourceVersion
        assert Counter(again)[True] == 1, again
        live = await kube.request("GET", f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases/{lease}")
        record = LeaseRecord.of(live)
        assert record.holder == electors[again.index(True)].identity and record.transitions == 1
        assert record.lease_seconds == 4


async def test_a_closed_write_gate_refuses_applies_and_deletes_before_sending(
    cluster: LocalCluster, namespace: str
) -> None:
    sent: list[tuple[str, str]] = []
    client = await KubeClient.connect(str(cluster.kubeconfig), observer=lambda request: sent.append(
        (request.verb, request.kind)))
    try:
        leading = False
        client.gate_writes(lambda: leading)
        obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "gated", "namespace": namespace},
               "data": {"k": "v"}}
        preview = await client.apply(obj, dry_run=True)  # dry runs compare; they write nothing
        assert preview["data"] == {"k": "v"}
        before = list(sent)
        with pytest.raises(NotLeader, match="not the leader"):
            await client.apply(obj)
        with pytest.raises(NotLeader):
            await client.delete(obj)
        assert sent == before, "a refused write must not reach the API server"
        assert await client.get(obj) is None
        leading = True
        await client.apply(obj)
        assert (await client.get(obj) or {}).get("data") == {"k": "v"}
    finally:
        await client.close()
