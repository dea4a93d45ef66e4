"""`[[clusters]]`, an app's `cluster`, `[agent] credentials_namespace`, and what a reload makes of them."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest

from agent.config import parse_settings
from agent.config.diff import desired_state_changed, diff_settings
from agent.errors import ConfigError
from agent.model import IN_CLUSTER


def settings(clusters: list[dict[str, Any]], apps: list[dict[str, Any]] | None = None,
             agent: dict[str, Any] | None = None) -> Any:
    return parse_settings({"agent": agent or {}, "clusters": clusters, "applications": apps or []}, file="a.toml")


def test_clusters_by_kubeconfig_and_by_server_with_the_agents_rate_limit_as_default() -> None:
    parsed = settings([
        {"name": "edge", "kubeconfig": "/etc/edge.kubeconfig", "context": "edge-admin"},
        {"name": "staging", "server": "https://10.0.0.5:6443", "token_file": "/run/token", "ca_file": "/etc/ca.pem",
         "kube_qps": 5, "kube_burst": 10},
    ], agent={"kube_qps": 20, "kube_burst": 40})
    edge, staging = parsed.clusters
    assert (edge.name, edge.kubeconfig, edge.context, edge.server) == ("edge", "/etc/edge.kubeconfig", "edge-admin", "")
    assert (edge.kube_qps, edge.kube_burst) == (20, 40)
    assert (staging.server, staging.token_file, staging.ca_file) == ("https://10.0.0.5:6443", "/run/token",
                                                                     "/etc/ca.pem")
    assert (staging.kube_qps, staging.kube_burst) == (5, 10)
    assert staging.origin == "a.toml: clusters[1]"


@pytest.mark.parametrize(("entry", "message"), [
    ({"name": "in-cluster", "kubeconfig": "/k"},
     "clusters[0].name: 'in-cluster' is the cluster the agent runs against"),
    ({"name": "bad name", "kubeconfig": "/k"}, "clusters[0].name: 'bad name' must be letters"),
    ({"name": "edge"}, "clusters[0].server: is required without kubeconfig"),
    ({"name": "edge", "kubeconfig": "/k", "server": "https://x"}, "clusters[0].server: give kubeconfig"),
    ({"name": "edge", "server": "https://x:6443"}, "clusters[0].token_file: is required with server"),
    ({"name": "edge", "server": "10.0.0.5:6443", "token_file": "/t"}, "clusters[0].server: '10.0.0.5:6443' must be"),
    ({"name": "edge", "server": "https://kubernetes.default.svc", "token_file": "/t"},
     "clusters[0].server: https://kubernetes.default.svc is the cluster the agent runs against"),
    ({"name": "edge", "context": "c", "server": "https://x", "token_file": "/t"},
     "clusters[0].context: needs kubeconfig"),
    ({"name": "edge", "kubeconfig": "/k", "kube_qps": -1}, "clusters[0].kube_qps: must be 0 or more"),
    ({"name": "edge", "kubeconfig": "/k", "token": "x"}, "clusters[0].token: unknown key"),
])
def test_a_cluster_entry_that_cannot_work_names_its_table_and_key(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match="^" + re.escape(f"a.toml: {message}")):
        settings([entry])


def test_two_clusters_may_not_share_a_name_or_a_server() -> None:
    with pytest.raises(ConfigError, match=r"clusters\[1\]\.name: 'edge' is used by another"):
        settings([{"name": "edge", "kubeconfig": "/a"}, {"name": "edge", "kubeconfig": "/b"}])
    with pytest.raises(ConfigError, match=r"clusters\[1\]\.server: 'https://x:1' is used by another"):
        settings([{"name": "a", "server": "https://x:1", "token_file": "/t"},
                  {"name": "b", "server": "https://x:1", "token_file": "/t"}])


def test_an_app_deploys_to_the_home_cluster_unless_it_names_another() -> None:
    parsed = settings([{"name": "edge", "kubeconfig": "/k"}], [
        {"name": "home", "repo": "r"}, {"name": "far", "repo": "r", "cluster": "edge"},
        {"name": "url", "repo": "r", "cluster": "https://10.1.2.3:6443"},  # a kubeconfig's server, known later
    ])
    assert [app.cluster for app in parsed.applications] == [IN_CLUSTER, "edge", "https://10.1.2.3:6443"]


def test_a_cluster_name_no_entry_declares_is_a_typo_unless_secrets_may_declare_it() -> None:
    with pytest.raises(ConfigError, match=r"applications\[0\]\.cluster: 'egde' names no \[\[clusters\]\] entry "
                                          r"\(known: edge, in-cluster; or set \[agent\] credentials_namespace"):
        settings([{"name": "edge", "kubeconfig": "/k"}], [{"name": "a", "repo": "r", "cluster": "egde"}])
    parsed = settings([], [{"name": "a", "repo": "r", "cluster": "from-a-secret"}],
                      agent={"credentials_namespace": "argocd"})
    assert parsed.agent.credentials_namespace == "argocd"
    with pytest.raises(ConfigError, match=r"agent\.credentials_namespace: must be a namespace name"):
        settings([], agent={"credentials_namespace": "Argo CD"})
    with pytest.raises(ConfigError, match=r"applications\[0\]\.cluster: must name a cluster"):
        settings([], [{"name": "a", "repo": "r", "cluster": " "}])


def test_moving_an_app_to_another_cluster_is_a_new_desired_state_and_clusters_changes_are_seen() -> None:
    before = settings([{"name": "edge", "kubeconfig": "/k"}], [{"name": "a", "repo": "r"}])
    after = settings([{"name": "edge", "kubeconfig": "/k2"}], [{"name": "a", "repo": "r", "cluster": "edge"}])
    assert desired_state_changed(before.applications[0], after.applications[0])
    change = diff_settings(before, after)
    assert change.clusters and [app.name for app in change.changed] == ["a"]
    moved = replace(after, clusters=tuple(replace(c, origin="b.toml: clusters[3]") for c in after.clusters))
    assert not diff_settings(after, moved).clusters, "where an entry stands in the file is not a change"
