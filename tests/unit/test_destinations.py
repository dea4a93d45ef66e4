"""Project destinations against an app's cluster and namespace, with Argo CD's globs and `!` denials."""

from __future__ import annotations

import pytest

from agent.engine.destinations import destination_permitted, glob_match
from agent.model import IN_CLUSTER_SERVER, Destination

SEED = (Destination(server=IN_CLUSTER_SERVER, namespace="payments"),
        Destination(server=IN_CLUSTER_SERVER, namespace="payments-*"))


@pytest.mark.parametrize(("server", "name", "namespace", "permitted"), [
    (IN_CLUSTER_SERVER, "in-cluster", "payments", True),
    (IN_CLUSTER_SERVER, "", "payments-std-001", True),
    (IN_CLUSTER_SERVER, "in-cluster", "ledger", False),
    ("https://edge:6443", "edge", "payments", False),
])
def test_the_seed_projects_destinations(server: str, name: str, namespace: str, permitted: bool) -> None:
    assert destination_permitted(SEED, server=server, name=name, namespace=namespace) is permitted


def test_an_entry_matches_on_its_server_or_its_name() -> None:
    by_name = (Destination(name="edge-*", namespace="*"),)
    assert destination_permitted(by_name, server="https://10.0.0.5:6443", name="edge-eu", namespace="x")
    assert not destination_permitted(by_name, server="https://edge-eu:6443", name="", namespace="x"), \
        "an app naming only a server is matched on the server alone"
    by_server = (Destination(server="https://10.0.0.*", namespace="apps"),)
    assert destination_permitted(by_server, server="https://10.0.0.5:6443", name="staging", namespace="apps")


def test_a_deny_entry_wins_over_any_match() -> None:
    rules = (Destination(server="*", namespace="*"), Destination(server="*", namespace="!kube-system"))
    assert destination_permitted(rules, server="https://a", name="a", namespace="payments")
    assert not destination_permitted(rules, server="https://a", name="a", namespace="kube-system")
    clusters = (Destination(name="*", namespace="*"), Destination(name="!prod-*", namespace="*"))
    assert destination_permitted(clusters, server="https://b", name="staging", namespace="x")
    assert not destination_permitted(clusters, server="https://p", name="prod-eu", namespace="x")
    assert not destination_permitted((), server="https://a", name="a", namespace="x"), "no entry permits nothing"


@pytest.mark.parametrize(("pattern", "value", "matches"), [
    ("*", "a/b", True), ("payments-*", "payments-std", True), ("payments-*", "payments", False),
    ("a?c", "abc", True), ("a[0-9]", "a5", True), ("a[!0-9]", "a5", False), ("{dev,prod}-x", "prod-x", True),
    ("{dev,prod}-x", "qa-x", False), ("!prod", "dev", True), ("!prod", "prod", False), ("", "", True),
    ("", "x", False), ("a.b", "axb", False), ("{open", "{open", True),
])
def test_globs_are_argo_cds(pattern: str, value: str, matches: bool) -> None:
    assert glob_match(pattern, value) is matches
