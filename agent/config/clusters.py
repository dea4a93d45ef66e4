"""`[[clusters]]`: clusters besides the one the agent runs against, by name.

    [[clusters]]                          [[clusters]]
    name = "edge"                         name = "staging"
    kubeconfig = "/etc/edge.kubeconfig"   server = "https://10.0.0.5:6443"
    context = "edge-admin"                token_file = "/run/secrets/staging-token"
                                          ca_file = "/etc/staging-ca.pem"
"""

from __future__ import annotations

import re

from agent.config.reader import Table
from agent.model import IN_CLUSTER, IN_CLUSTER_SERVER, ClusterSpec

_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?")
_SERVER = re.compile(r"https?://[^\s/]+(/\S*)?")


def parse_clusters(tables: list[Table], *, kube_qps: int, kube_burst: int) -> tuple[ClusterSpec, ...]:
    """Every `[[clusters]]` entry; `kube_qps` and `kube_burst` are `[agent]`'s, the defaults."""
    specs: list[ClusterSpec] = []
    for table in tables:
        spec = _cluster(table, kube_qps=kube_qps, kube_burst=kube_burst)
        if any(existing.name == spec.name for existing in specs):
            raise table.error("name", f"{spec.name!r} is used by another [[clusters]] entry")
        if spec.server and any(existing.server == spec.server for existing in specs):
            raise table.error("server", f"{spec.server!r} is used by another [[clusters]] entry")
        specs.append(spec)
    return tuple(specs)


def _cluster(table: Table, *, kube_qps: int, kube_burst: int) -> ClusterSpec:
    name = table.get("name", str, required=True)
    if not _NAME.fullmatch(name):
        raise table.error("name", f"{name!r} must be letters, digits, '.', '_' and '-' (at most 253)")
    if name == IN_CLUSTER:
        raise table.error("name", f"{IN_CLUSTER!r} is the cluster the agent runs against ([agent] kubeconfig)")
    spec = ClusterSpec(
        name=name,
        server=table.get("server", str, ""),
        kubeconfig=table.path("kubeconfig"),
        context=table.get("context", str, ""),
        token_file=table.path("token_file"),
        ca_file=table.path("ca_file"),
        insecure=table.get("insecure_skip_tls_verify", bool, False),
        kube_qps=table.non_negative("kube_qps", kube_qps),
        kube_burst=table.positive("kube_burst", kube_burst),
        origin=f"{table.file}: {table.where}",
    )
    table.finish()
    _check_access(table, spec)
    return spec


def _check_access(table: Table, spec: ClusterSpec) -> None:
    """Either a kubeconfig, or a server with a token file: the two ways in, never mixed."""
    if spec.kubeconfig:
        for key, value in (("server", spec.server), ("token_file", spec.token_file), ("ca_file", spec.ca_file)):
            if value:
                raise table.error(key, "give kubeconfig (and context), or server with token_file, not both")
        return
    if spec.context:
        raise table.error("context", "needs kubeconfig")
    if not spec.server:
        raise table.error("server", "is required without kubeconfig (give kubeconfig, or server and token_file)")
    if not _SERVER.fullmatch(spec.server):
        raise table.error("server", f"{spec.server!r} must be an https:// URL, like \"https://10.0.0.5:6443\"")
    if spec.server.rstrip("/") == IN_CLUSTER_SERVER:
        raise table.error("server", f"{IN_CLUSTER_SERVER} is the cluster the agent runs against ({IN_CLUSTER!r})")
    if not spec.token_file:
        raise table.error("token_file", "is required with server (a file holding a bearer token)")
