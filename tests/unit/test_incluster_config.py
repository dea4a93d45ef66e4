"""In-cluster configuration: paths from the environment, a rotated token re-read, clear errors."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from kubernetes_asyncio import client as k8s_client

from agent.errors import KubeUnreachable
from agent.kube.incluster import ServiceAccountFiles, configure_in_cluster


def rotate(path: Path, token: str) -> None:
    """Replace the file the way the kubelet does: write aside, then rename over it."""
    aside = path.with_suffix(".new")
    aside.write_text(token)
    os.replace(aside, path)


@pytest.fixture
def account(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "token").write_text("token-a\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    (tmp_path / "namespace").write_text("gitops-agent")
    return {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
            "GITOPS_AGENT_SA_TOKEN_FILE": str(tmp_path / "token"), "GITOPS_AGENT_SA_CA_FILE": str(tmp_path / "ca.crt"),
            "GITOPS_AGENT_SA_NAMESPACE_FILE": str(tmp_path / "namespace")}


async def test_configuration_points_at_the_service_with_the_token_and_ca(account: dict[str, str]) -> None:
    configuration = k8s_client.Configuration()
    configure_in_cluster(configuration, environ=account)
    assert configuration.host == "https://10.96.0.1:443"
    assert configuration.ssl_ca_cert == account["GITOPS_AGENT_SA_CA_FILE"]
    assert (await configuration.auth_settings())["BearerToken"]["value"] == "Bearer token-a"
    assert ServiceAccountFiles.from_environment(account).read_namespace() == "gitops-agent"


async def test_a_rotated_token_is_used_from_the_next_request_on(account: dict[str, str]) -> None:
    configuration = k8s_client.Configuration()
    token = configure_in_cluster(configuration, environ=account)
    path = Path(account["GITOPS_AGENT_SA_TOKEN_FILE"])
    assert (await configuration.auth_settings())["BearerToken"]["value"] == "Bearer token-a"
    rotate(path, "token-b-longer")
    assert (await configuration.auth_settings())["BearerToken"]["value"] == "Bearer token-b-longer"
    reads = token.reads
    for _ in range(3):  # unchanged file: no re-read
        await configuration.auth_settings()
    assert token.reads == reads


async def test_a_token_file_that_vanishes_keeps_the_last_token(account: dict[str, str],
                                                                caplog: pytest.LogCaptureFixture) -> None:
    configuration = k8s_client.Configuration()
    configure_in_cluster(configuration, environ=account)
    await asyncio.to_thread(Path(account["GITOPS_AGENT_SA_TOKEN_FILE"]).unlink)
    for _ in range(2):
        assert (await configuration.auth_settings())["BearerToken"]["value"] == "Bearer token-a"
    assert len([r for r in caplog.records if "cannot re-read the service account token" in r.getMessage()]) == 1


def test_missing_files_or_variables_are_clear_errors(account: dict[str, str]) -> None:
    Path(account["GITOPS_AGENT_SA_TOKEN_FILE"]).unlink()
    with pytest.raises(KubeUnreachable, match=r"cannot read the service account token .*token: No such file"):
        configure_in_cluster(k8s_client.Configuration(), environ=account)
    with pytest.raises(KubeUnreachable, match="needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        configure_in_cluster(k8s_client.Configuration(), environ={**account, "KUBERNETES_SERVICE_PORT": ""})
    Path(account["GITOPS_AGENT_SA_CA_FILE"]).write_text("")
    with pytest.raises(KubeUnreachable, match=r"CA file .* is empty"):
        configure_in_cluster(k8s_client.Configuration(), environ=account)


def test_ipv6_service_host_is_bracketed(account: dict[str, str]) -> None:
    configuration = k8s_client.Configuration()
    configure_in_cluster(configuration, environ={**account, "KUBERNETES_SERVICE_HOST": "fd00::1"})
    assert configuration.host == "https://[fd00::1]:443"


async def test_the_library_loader_would_reread_only_once_a_minute(account: dict[str, str]) -> None:
    """Why we have our own loader: kubernetes-asyncio's re-reads the token file after 60 s at the earliest."""
    from kubernetes_asyncio.config.incluster_config import InClusterConfigLoader

    configuration = k8s_client.Configuration()
    InClusterConfigLoader(account["GITOPS_AGENT_SA_TOKEN_FILE"], account["GITOPS_AGENT_SA_CA_FILE"],
                          environ=account).load_and_set(configuration)
    rotate(Path(account["GITOPS_AGENT_SA_TOKEN_FILE"]), "token-b")
    await asyncio.sleep(0)
    assert (await configuration.auth_settings())["BearerToken"]["value"] == "Bearer token-a\n"
