"""In-cluster configuration: the pod's service account token and CA, with token rotation.

The kubelet rewrites a projected service-account token well before it expires (at 80%
of its lifetime) and the API server stops accepting the old one once it expires or
its bound object is deleted. kubernetes-asyncio's own loader re-reads the token file
at most once a minute whatever happens to the file; this one stats the file on every
request and re-reads it as soon as it changed (a stat is a syscall, a request is a
round trip), so a rotated token is used from the next request on.

Paths default to where Kubernetes mounts them and can be overridden (tests, or a
token mounted elsewhere) with GITOPS_AGENT_SA_TOKEN_FILE, GITOPS_AGENT_SA_CA_FILE and
GITOPS_AGENT_SA_NAMESPACE_FILE.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.errors import KubeUnreachable

log = logging.getLogger(__name__)

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
TOKEN_FILE_ENV = "GITOPS_AGENT_SA_TOKEN_FILE"
CA_FILE_ENV = "GITOPS_AGENT_SA_CA_FILE"
NAMESPACE_FILE_ENV = "GITOPS_AGENT_SA_NAMESPACE_FILE"
HOST_ENV, PORT_ENV = "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"


def in_cluster(environ: Mapping[str, str] = os.environ) -> bool:
    """True when Kubernetes says we run in a pod (the variables every pod gets)."""
    return bool(environ.get(HOST_ENV))


def pod_namespace(environ: Mapping[str, str] = os.environ) -> str:
    """The namespace the agent runs in: $POD_NAMESPACE, else its service account's; "" outside a cluster."""
    namespace = environ.get("POD_NAMESPACE", "")
    if not namespace and in_cluster(environ):
        namespace = ServiceAccountFiles.from_environment(environ).read_namespace()
    return namespace


@dataclass(frozen=True)
class ServiceAccountFiles:
    token: Path
    ca: Path
    namespace: Path

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> ServiceAccountFiles:
        return cls(
            token=Path(environ.get(TOKEN_FILE_ENV) or SERVICE_ACCOUNT_DIR / "token"),
            ca=Path(environ.get(CA_FILE_ENV) or SERVICE_ACCOUNT_DIR / "ca.crt"),
            namespace=Path(environ.get(NAMESPACE_FILE_ENV) or SERVICE_ACCOUNT_DIR / "namespace"),
        )

    def read_namespace(self) -> str:
        """The pod's namespace as the service-account mount says; empty when there is none."""
        try:
            return self.namespace.read_text().strip()
        except OSError:
            return ""


class TokenFile:
    """A bearer token file, re-read whenever it changes (inode, size or mtime)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None
        self.token = ""
        self.reads = 0
        self._warned = False

    def load(self) -> str:
        """Read the token now; raises KubeUnreachable when it is missing or empty."""
        try:
            stat = self.path.stat()
            token = self.path.read_text().strip()
        except OSError as exc:
            raise KubeUnreachable(f"cannot read the service account token {self.path}: {exc.strerror}") from exc
        if not token:
            raise KubeUnreachable(f"the service account token {self.path} is empty")
        self._seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns)
        self.token, self.reads = token, self.reads + 1
        return token

    def current(self) -> str:
        """The token, re-read first when the file changed; the last good token when it cannot be read."""
        try:
            stat = self.path.stat()
        except OSError as exc:
            self._warn_once(exc.strerror or str(exc))
            return self.token
        if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != self._seen:
            try:
                self.load()
            except KubeUnreachable as exc:
                self._warn_once(exc.message)
                return self.token
            self._warned = False
            log.info("service account token re-read from %s", self.path)
        return self.token

    def _warn_once(self, problem: str) -> None:
        if not self._warned:
            log.warning("cannot re-read the service account token %s: %s; using the previous one", self.path, problem)
            self._warned = True

    def refresh_hook(self, configuration: Any) -> None:
        """For `Configuration.refresh_api_key_hook`, which the ApiClient calls before every request."""
        configuration.api_key["BearerToken"] = f"Bearer {self.current()}"


def configure_in_cluster(configuration: Any, *, files: ServiceAccountFiles | None = None,
                         environ: Mapping[str, str] = os.environ) -> TokenFile:
    """Point a kubernetes-asyncio Configuration at the API server the pod's variables name."""
    files = files or ServiceAccountFiles.from_environment(environ)
    host, port = environ.get(HOST_ENV, ""), environ.get(PORT_ENV, "")
    if not host or not port:
        raise KubeUnreachable(f"in-cluster configuration needs {HOST_ENV} and {PORT_ENV}")
    try:
        if not files.ca.read_bytes().strip():
            raise KubeUnreachable(f"the cluster CA file {files.ca} is empty")
    except OSError as exc:
        raise KubeUnreachable(f"cannot read the cluster CA file {files.ca}: {exc.strerror}") from exc
    token = TokenFile(files.token)
    token.load()
    configuration.host = f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"
    configuration.ssl_ca_cert = str(files.ca)
    configuration.api_key["BearerToken"] = f"Bearer {token.token}"
    configuration.refresh_api_key_hook = token.refresh_hook
    return token
