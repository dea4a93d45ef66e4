"""Argo CD's cluster Secrets: one Secret per cluster, labelled `argocd.argoproj.io/secret-type: cluster`.

    data:
      name:   edge                              # how apps name it (optional: the server then)
      server: https://edge.example.com:6443
      config: |                                 # JSON
        {"bearerToken": "...",
         "tlsClientConfig": {"insecure": false, "serverName": "...", "caData": "<base64 PEM>",
                             "certData": "<base64 PEM>", "keyData": "<base64 PEM>"},
         "proxyUrl": "http://proxy:3128"}

`parse_cluster_secret` is pure; `read_cluster_secrets` lists them in one namespace through the
home cluster's client. A Secret that cannot be used is reported (by its namespace and name,
never its contents) and skipped. Authentication other than a bearer token or a client
certificate (AWS, exec plugins, basic auth) is not supported and says so.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from agent.errors import AgentError
from agent.kube.client import KubeClient
from agent.model import IN_CLUSTER, IN_CLUSTER_SERVER, ClusterSpec

SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
_UNSUPPORTED = ("username", "password", "awsAuthConfig", "execProviderConfig")
_TLS_KEYS = frozenset({"insecure", "serverName", "caData", "certData", "keyData"})


class InvalidClusterSecret(AgentError):
    """A cluster Secret the agent cannot use; the message names the Secret and the key."""


@dataclass(frozen=True)
class ClusterSecrets:
    clusters: tuple[ClusterSpec, ...]
    problems: tuple[str, ...]  # one line per Secret skipped


def parse_cluster_secret(secret: Mapping[str, Any], *, kube_qps: int, kube_burst: int) -> ClusterSpec:
    """The cluster one Secret declares. Raises InvalidClusterSecret."""
    meta = secret.get("metadata") or {}
    where = f"Secret {meta.get('namespace', '')}/{meta.get('name', '')}"
    data = _string_data(secret, where)
    server = data.get("server", "").strip().rstrip("/")
    if not server.startswith(("https://", "http://")):
        raise InvalidClusterSecret(f"{where}: server: must be the API server's URL, not {server!r}")
    name = data.get("name", "").strip() or server
    if name == IN_CLUSTER or server == IN_CLUSTER_SERVER:
        raise InvalidClusterSecret(f"{where}: names the cluster the agent runs against ({IN_CLUSTER}, "
                                   f"{IN_CLUSTER_SERVER}); it is configured by [agent] kubeconfig")
    config = _config(data.get("config", ""), where)
    tls = config.get("tlsClientConfig") or {}
    if not isinstance(tls, dict) or set(tls) - _TLS_KEYS:
        raise InvalidClusterSecret(f"{where}: config.tlsClientConfig: must be an object with "
                                   f"{', '.join(sorted(_TLS_KEYS))}")
    token = config.get("bearerToken", "")
    if not isinstance(token, str):
        raise InvalidClusterSecret(f"{where}: config.bearerToken: must be a string")
    return ClusterSpec(
        name=name, server=server, bearer_token=token, insecure=tls.get("insecure") is True,
        server_name=str(tls.get("serverName") or ""), ca_data=_pem(tls, "caData", where),
        cert_data=_pem(tls, "certData", where), key_data=_pem(tls, "keyData", where),
        proxy_url=str(config.get("proxyUrl") or ""), kube_qps=kube_qps, kube_burst=kube_burst, origin=where,
    )


def _string_data(secret: Mapping[str, Any], where: str) -> dict[str, str]:
    """`data` decoded (base64, as the API serves it), with `stringData` over it (as the API merges it)."""
    decoded: dict[str, str] = {}
    for key, value in (secret.get("data") or {}).items():
        try:
            decoded[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise InvalidClusterSecret(f"{where}: data.{key}: not base64 of UTF-8 text ({exc})") from exc
    decoded.update({key: str(value) for key, value in (secret.get("stringData") or {}).items()})
    return decoded


def _config(text: str, where: str) -> dict[str, Any]:
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise InvalidClusterSecret(f"{where}: config: not JSON ({exc.__class__.__name__} at {exc})") from None
    if not isinstance(config, dict):
        raise InvalidClusterSecret(f"{where}: config: must be a JSON object")
    for key in _UNSUPPORTED:
        if config.get(key):
            raise InvalidClusterSecret(f"{where}: config.{key}: not supported; give bearerToken, or "
                                       "tlsClientConfig.certData and keyData")
    return config


def _pem(tls: Mapping[str, Any], key: str, where: str) -> bytes:
    value = tls.get(key) or ""
    try:
        return base64.b64decode(str(value), validate=True)
    except binascii.Error as exc:
        raise InvalidClusterSecret(f"{where}: config.tlsClientConfig.{key}: not base64 ({exc})") from None


def parse_cluster_secrets(items: list[Mapping[str, Any]], *, kube_qps: int, kube_burst: int) -> ClusterSecrets:
    """Every usable cluster, in the order of the Secrets' names; a second Secret for a name or server
    already taken is skipped. Pure."""
    clusters: list[ClusterSpec] = []
    problems: list[str] = []
    for secret in sorted(items, key=lambda item: str((item.get("metadata") or {}).get("name", ""))):
        try:
            spec = parse_cluster_secret(secret, kube_qps=kube_qps, kube_burst=kube_burst)
        except InvalidClusterSecret as exc:
            problems.append(exc.message)
            continue
        taken = next((other for other in clusters if spec.aliases & other.aliases), None)
        if taken is not None:
            problems.append(f"{spec.origin}: cluster {spec.name} ({spec.server}) is already declared by {taken.origin}")
            continue
        clusters.append(spec)
    return ClusterSecrets(tuple(clusters), tuple(problems))


async def read_cluster_secrets(kube: KubeClient, namespace: str, *, kube_qps: int, kube_burst: int) -> ClusterSecrets:
    """List the cluster Secrets of `namespace`; raises KubeError or KubeUnreachable when it cannot."""
    listing = await kube.request("GET", f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets",
                                 query={"labelSelector": f"{SECRET_TYPE_LABEL}=cluster"}, kind="Secret")
    return parse_cluster_secrets(list(listing.get("items") or []), kube_qps=kube_qps, kube_burst=kube_burst)
