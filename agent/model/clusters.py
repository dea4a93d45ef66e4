"""The clusters an agent deploys to, as plain data; the clients are agent.kube.clusters'.

Names are Argo CD's: the cluster the agent runs against is `in-cluster`, with the server
URL `https://kubernetes.default.svc`, whatever address the agent really reaches it at.
Every other cluster is declared in `[[clusters]]` or in an Argo CD cluster Secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field

IN_CLUSTER = "in-cluster"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
DEFAULT_KUBE_QPS = 0  # adaptive: agent.kube.ratelimit
DEFAULT_KUBE_BURST = 100


@dataclass(frozen=True)
class ClusterSpec:
    """How to reach one cluster: a kubeconfig (and context), or a server URL with a bearer token
    (read from `token_file`, or given by a Secret) and TLS settings.

    Secret material (the token and the TLS client key and certificates a Secret carries) is
    kept out of repr, so that logging a spec never prints it.
    """

    name: str
    server: str = ""  # with a kubeconfig: empty, the kubeconfig's server is used
    kubeconfig: str = ""
    context: str = ""
    token_file: str = ""
    ca_file: str = ""
    insecure: bool = False  # do not verify the server's certificate
    server_name: str = ""  # the name to verify the server's certificate against, when not the URL's host
    bearer_token: str = field(default="", repr=False)
    ca_data: bytes = field(default=b"", repr=False)  # PEM
    cert_data: bytes = field(default=b"", repr=False)  # PEM: client certificate
    key_data: bytes = field(default=b"", repr=False)  # PEM: client key
    proxy_url: str = ""
    kube_qps: int = DEFAULT_KUBE_QPS
    kube_burst: int = DEFAULT_KUBE_BURST
    # Where it was declared, for messages: `FILE: clusters[1]` or `Secret argocd/edge`. Not compared:
    # the same cluster moved to another line of the file keeps its client.
    origin: str = field(default="", compare=False)

    @property
    def aliases(self) -> frozenset[str]:
        """Every way an app may name this cluster: its name and its server URL."""
        return frozenset(alias for alias in (self.name, self.server) if alias)
