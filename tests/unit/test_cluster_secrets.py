"""Argo CD cluster Secrets → ClusterSpec: what is read, what is refused, and what never shows."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from agent.kube.cluster_secrets import InvalidClusterSecret, parse_cluster_secret, parse_cluster_secrets

TOKEN = "eyJhbGciOi-secret-token"
CA = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def secret(secret_name: str = "edge-cluster", **data: str) -> dict[str, Any]:
    """A Secret as the API serves it: `data` base64-encoded."""
    return {"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": secret_name, "namespace": "argocd",
                         "labels": {"argocd.argoproj.io/secret-type": "cluster"}},
            "data": {key: b64(value) for key, value in data.items()}}


def parse(item: dict[str, Any]) -> Any:
    return parse_cluster_secret(item, kube_qps=50, kube_burst=100)


def test_name_server_token_and_tls_data_are_read_and_kept_out_of_repr() -> None:
    config = {"bearerToken": TOKEN, "tlsClientConfig": {"insecure": False, "serverName": "edge.internal",
                                                        "caData": b64(CA), "certData": b64(CA), "keyData": b64(KEY)},
              "proxyUrl": "http://proxy:3128"}
    spec = parse(secret(name="edge", server="https://edge.example.com:6443/", config=json.dumps(config)))
    assert (spec.name, spec.server, spec.server_name, spec.proxy_url) == (
        "edge", "https://edge.example.com:6443", "edge.internal", "http://proxy:3128")
    assert (spec.bearer_token, spec.ca_data, spec.cert_data, spec.key_data) == (TOKEN, CA, CA, KEY)
    assert spec.origin == "Secret argocd/edge-cluster"
    assert TOKEN not in repr(spec) and "PRIVATE" not in repr(spec) and "MIIB" not in repr(spec)
    assert spec.aliases == {"edge", "https://edge.example.com:6443"}


def test_string_data_is_read_and_a_secret_without_a_name_is_known_by_its_server() -> None:
    item = {"metadata": {"name": "s", "namespace": "argocd"},
            "stringData": {"server": "https://10.0.0.5:6443", "config": json.dumps({"bearerToken": TOKEN})}}
    spec = parse(item)
    assert (spec.name, spec.server, spec.bearer_token, spec.insecure) == ("https://10.0.0.5:6443",
                                                                          "https://10.0.0.5:6443", TOKEN, False)


@pytest.mark.parametrize(("data", "message"), [
    ({"name": "edge"}, "server: must be the API server's URL, not ''"),
    ({"server": "https://kubernetes.default.svc"}, "names the cluster the agent runs against"),
    ({"name": "in-cluster", "server": "https://x"}, "names the cluster the agent runs against"),
    ({"server": "https://x", "config": "{nope"}, "config: not JSON"),
    ({"server": "https://x", "config": "[1]"}, "config: must be a JSON object"),
    ({"server": "https://x", "config": json.dumps({"awsAuthConfig": {"clusterName": "c"}})},
     "config.awsAuthConfig: not supported"),
    ({"server": "https://x", "config": json.dumps({"execProviderConfig": {"command": "x"}})},
     "config.execProviderConfig: not supported"),
    ({"server": "https://x", "config": json.dumps({"username": "u", "password": TOKEN})}, "config.username: not"),
    ({"server": "https://x", "config": json.dumps({"tlsClientConfig": {"caData": "%%%"}})},
     "config.tlsClientConfig.caData: not base64"),
    ({"server": "https://x", "config": json.dumps({"tlsClientConfig": {"ca": "x"}})},
     "config.tlsClientConfig: must be an object with"),
    ({"server": "https://x", "config": json.dumps({"bearerToken": 7})}, "config.bearerToken: must be a string"),
])
def test_a_secret_that_cannot_be_used_is_refused_by_name_never_by_content(data: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidClusterSecret) as refused:
        parse(secret(**data))
    assert str(refused.value).startswith("Secret argocd/edge-cluster: ")
    assert message in str(refused.value)
    assert TOKEN not in str(refused.value)


def test_data_that_is_not_base64_names_its_key() -> None:
    item = secret(server="https://x")
    item["data"]["config"] = "not base64!"
    with pytest.raises(InvalidClusterSecret, match=r"^Secret argocd/edge-cluster: data\.config: not base64"):
        parse(item)


def test_the_first_secret_of_a_name_or_server_wins_and_the_others_are_reported() -> None:
    found = parse_cluster_secrets([
        secret("b-second", name="edge", server="https://b:6443"),
        secret("a-first", name="edge", server="https://a:6443"),
        secret("c-same-server", name="other", server="https://a:6443"),
        secret("d-broken", server="nope"),
        secret("e-fine", name="far", server="https://e:6443"),
    ], kube_qps=5, kube_burst=10)
    assert [(spec.name, spec.server) for spec in found.clusters] == [("edge", "https://a:6443"),
                                                                      ("far", "https://e:6443")]
    assert found.clusters[0].kube_qps == 5
    assert found.problems == (
        "Secret argocd/b-second: cluster edge (https://b:6443) is already declared by Secret argocd/a-first",
        "Secret argocd/c-same-server: cluster other (https://a:6443) is already declared by Secret argocd/a-first",
        "Secret argocd/d-broken: server: must be the API server's URL, not 'nope'",
    )
