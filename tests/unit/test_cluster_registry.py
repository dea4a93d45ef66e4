"""Which cluster an app means, whether it answers, and clusters coming and going (no request is sent)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.engine.fingerprint import live_digest
from agent.errors import KubeUnreachable, UnknownCluster
from agent.kube import KubeClient
from agent.kube._library import Configuration
from agent.kube.clusters import ClusterOptions, ClusterRegistry, cluster_for_destination, destination_of
from agent.kube.reachability import Reachability
from agent.model import IN_CLUSTER, IN_CLUSTER_SERVER, ClusterSpec

EDGE = ClusterSpec(name="edge", server="https://edge:6443")
STAGING = ClusterSpec(name="staging", server="https://10.0.0.5:6443")


def test_a_destination_names_its_cluster_by_name_or_by_server_never_both() -> None:
    clusters = [ClusterSpec(name=IN_CLUSTER, server=IN_CLUSTER_SERVER), EDGE, STAGING]
    assert cluster_for_destination("", "edge", clusters) is EDGE
    assert cluster_for_destination("https://10.0.0.5:6443/", "", clusters) is STAGING
    assert cluster_for_destination(IN_CLUSTER_SERVER, "", clusters).name == IN_CLUSTER
    with pytest.raises(UnknownCluster, match=r"^application destination can't have both name and server "
                                             r"defined: edge https://edge:6443$"):
        cluster_for_destination("https://edge:6443", "edge", clusters)
    with pytest.raises(UnknownCluster, match=r"^there are no clusters with this name: prod$"):
        cluster_for_destination("", "prod", clusters)
    with pytest.raises(UnknownCluster, match=r"^there are no clusters with this server: https://prod$"):
        cluster_for_destination("https://prod", "", clusters)
    with pytest.raises(UnknownCluster, match="neither a cluster name nor a server"):
        cluster_for_destination("", "", clusters)


def test_an_apps_cluster_is_a_server_when_it_is_a_url() -> None:
    assert destination_of("edge") == ("", "edge")
    assert destination_of("https://edge:6443") == ("https://edge:6443", "")


async def test_a_cluster_is_down_from_the_first_request_without_answer_until_any_answer() -> None:
    now = [100.0]
    changes: list[bool] = []
    reach = Reachability("edge", clock=lambda: now[0], on_change=changes.append)
    reach.check()  # up: nothing raised
    reach.unreachable("https://edge:6443: ClientConnectorError: refused")
    now[0] = 112.0
    reach.unreachable("https://edge:6443: TimeoutError")  # still down: no second transition
    with pytest.raises(KubeUnreachable, match=r"^cluster edge is unreachable: https://edge:6443: TimeoutError$"):
        reach.check()
    await asyncio.wait_for(reach.wait_down(), 1)
    reach.answered()
    reach.answered()
    reach.check()
    assert changes == [False, True]
    assert (reach.down, reach.error) == (False, "")


@pytest.fixture
async def registry(tmp_path: Path) -> ClusterRegistry:
    configuration = Configuration()
    configuration.host = "https://127.0.0.1:9"
    token = tmp_path / "token"
    token.write_text("t\n")
    specs = [ClusterSpec(name="edge", server="https://edge:6443", token_file=str(token))]
    return ClusterRegistry(KubeClient(configuration), clusters=specs, options=ClusterOptions(digest=live_digest))


async def test_clusters_are_found_by_name_or_server_and_the_home_cluster_by_argo_cds_names(
    registry: ClusterRegistry,
) -> None:
    try:
        assert registry.find(IN_CLUSTER) is registry.home
        assert registry.find(IN_CLUSTER_SERVER) is registry.home
        edge = await registry.admit("edge")
        assert registry.find("https://edge:6443") is edge and edge.kube is not None and edge.watch is not None
        assert registry.server_of("edge") == "https://edge:6443"
        assert registry.server_of("https://gone:1") == "https://gone:1"
        assert registry.server_of("gone") == ""
        edge.reach.unreachable("https://edge:6443: refused")
        with pytest.raises(KubeUnreachable, match=r"^cluster edge is unreachable"):
            await registry.admit("edge")
        with pytest.raises(UnknownCluster):
            await registry.admit("gone")
    finally:
        await registry.close()
        await registry.home.kube.close()  # type: ignore[union-attr]


async def test_a_reload_keeps_unchanged_clusters_and_tells_which_came_and_went(
    registry: ClusterRegistry, tmp_path: Path,
) -> None:
    told: list[frozenset[str]] = []
    registry.on_event(told.append)
    try:
        edge = await registry.admit("edge")
        token = str(tmp_path / "token")
        far = ClusterSpec(name="far", server="https://far:6443", token_file=token)
        await registry.configure([ClusterSpec(name="edge", server="https://edge:6443", token_file=token), far])
        assert registry.find("edge") is edge, "the same spec keeps its client and watches"
        assert told == [frozenset({"far", "https://far:6443"})]
        await registry.configure([far])
        assert told[-1] == frozenset({"edge", "https://edge:6443"})
        with pytest.raises(UnknownCluster):
            registry.find("edge")
        assert registry.find("far").kube is not None, "built at once: the registry had started"
    finally:
        await registry.close()
        await registry.home.kube.close()  # type: ignore[union-attr]
