"""The API server through an HTTPS proxy named by the environment, looked up once per client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from agent.kube import KubeClient
from tests.support.cluster import LocalCluster


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on loopback that records the tunnels it opened."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> ConnectProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        request = await client_in.readuntil(b"\r\n\r\n")
        method, target, _ = request.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            client_out.close()
            return
        self.tunnels.append(target)
        host, port = target.rsplit(":", 1)
        server_in, server_out = await asyncio.open_connection(host, int(port))
        client_out.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await asyncio.gather(_pipe(client_in, server_out), _pipe(server_in, client_out))


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()


@contextlib.asynccontextmanager
async def client(cluster: LocalCluster) -> AsyncIterator[KubeClient]:
    kube = await KubeClient.connect(str(cluster.kubeconfig))
    try:
        yield kube
    finally:
        await kube.close()


async def test_requests_go_through_the_proxy_the_environment_names(cluster: LocalCluster,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    async with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        async with client(cluster) as kube:
            monkeypatch.delenv("HTTPS_PROXY")  # looked up once, when the client was made
            assert (await kube.ping()).startswith("v")
        assert proxy.tunnels and all(t.startswith("127.0.0.1:") for t in proxy.tunnels)


async def test_no_proxy_names_the_api_server(cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    async with ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        async with client(cluster) as kube:
            assert (await kube.ping()).startswith("v")
        assert proxy.tunnels == []
