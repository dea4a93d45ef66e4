"""How a client reaches a cluster: kubernetes-asyncio's Configuration and REST layer for it.

    load_configuration      the home cluster: in-cluster, else a kubeconfig
    cluster_configuration   a ClusterSpec: a kubeconfig (and context), or a server with a bearer
                            token (from a file, re-read when it changes, or from a Secret)
    tls_material            a Secret's CA, client certificate and key as files for the moment
                            the client is built (Python's ssl loads certificates from files only)
    rest_client             the REST layer, with the environment's proxy settings read once
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from agent.errors import KubeUnreachable
from agent.kube._library import ConfigException, Configuration, RESTClientObject, load_kube_config
from agent.kube.incluster import TokenFile, configure_in_cluster, in_cluster
from agent.model import ClusterSpec

READ_BUFFER_BYTES = 2**21  # watch events carry whole objects (etcd allows 1.5 MiB), as kubernetes-asyncio sets


async def load_configuration(kubeconfig: str = "", context: str = "") -> Configuration:
    """In-cluster when running in a pod and no kubeconfig is named; else kubeconfig."""
    configuration = Configuration()
    if not kubeconfig and in_cluster():
        configure_in_cluster(configuration)  # the pod's service account, re-read when rotated
        return configuration
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(
        Path.home() / ".kube" / "config"
    )
    try:
        await load_kube_config(
            config_file=path, context=context or None, client_configuration=configuration
        )
    except (ConfigException, OSError) as exc:
        raise KubeUnreachable(f"cannot load kubeconfig {path}: {exc}") from exc
    return configuration


async def cluster_configuration(spec: ClusterSpec) -> Configuration:
    """The configuration for one of `[[clusters]]` or a cluster Secret; raises KubeUnreachable
    (naming the file) when a kubeconfig or token file cannot be read."""
    if spec.kubeconfig:
        return await load_configuration(spec.kubeconfig, spec.context)
    configuration = Configuration()
    configuration.host = spec.server.rstrip("/")
    if spec.token_file:
        token = TokenFile(Path(spec.token_file))
        token.load()
        configuration.api_key["BearerToken"] = f"Bearer {token.token}"
        configuration.refresh_api_key_hook = token.refresh_hook  # a rotated token is used from the next request
    elif spec.bearer_token:
        configuration.api_key["BearerToken"] = f"Bearer {spec.bearer_token}"
    configuration.ssl_ca_cert = spec.ca_file or None  # read when the client is built
    configuration.verify_ssl = not spec.insecure
    configuration.tls_server_name = spec.server_name or None
    configuration.proxy = spec.proxy_url or None
    return configuration


@contextlib.contextmanager
def tls_material(spec: ClusterSpec, configuration: Configuration) -> Iterator[None]:
    """A Secret's PEM data as files in a private directory while the client's TLS context is built
    (inside this block); removed right after, so key material does not stay on disk."""
    if not (spec.ca_data or spec.cert_data or spec.key_data):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="gitops-agent-tls-") as directory:
        for attribute, data, name in (("ssl_ca_cert", spec.ca_data, "ca.crt"), ("cert_file", spec.cert_data,
                                                                                 "client.crt"),
                                      ("key_file", spec.key_data, "client.key")):
            if data:
                path = Path(directory) / name
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "wb") as handle:
                    handle.write(data)
                setattr(configuration, attribute, str(path))
        yield


def rest_client(configuration: Configuration) -> RESTClientObject:
    """kubernetes-asyncio's REST layer, with the proxy settings of the environment read once.

    Its session trusts the environment, so aiohttp would read ~/.netrc and the proxy
    variables again for every request: a file read on the event loop each time. The
    proxy (and its credentials) for the API server is looked up here instead.
    """
    rest = RESTClientObject(configuration)
    if not rest.proxy:
        try:
            proxy, auth = get_env_proxy_for_url(URL(configuration.host or ""))
        except LookupError:  # no proxy, or NO_PROXY names the server
            pass
        else:
            rest.proxy = str(proxy)
            if auth is not None:
                rest.proxy_headers = {**(rest.proxy_headers or {}), "Proxy-Authorization": auth.encode()}
    trusting = rest.pool_manager
    rest.pool_manager = aiohttp.ClientSession(connector=trusting.connector, trust_env=False,
                                              read_bufsize=READ_BUFFER_BYTES)
    trusting.detach()  # the connector now belongs to the new session
    return rest
