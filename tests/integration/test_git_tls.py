"""HTTPS: `ca_file` trusts a private CA, an unknown certificate is refused, `insecure_skip_tls_verify` skips.

A TLS-terminating proxy on loopback (asyncio, with a certificate made by openssl)
in front of the smart-HTTP git server.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agent.errors import SourceError
from agent.model import RepoSpec
from agent.source import GitSource
from tests.support.gitserver import GitServer, WorkTree


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
            writer.close()


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


@pytest.fixture
async def https_base(git_server: GitServer, certificate: tuple[Path, Path]) -> AsyncIterator[tuple[str, Path]]:
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def relay(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", git_server.port)
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(relay, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    yield f"https://127.0.0.1:{port}/", cert
    server.close()


async def test_private_ca_is_trusted_through_ca_file_only(https_base: tuple[str, Path], repo: WorkTree,
                                                          tmp_path: Path) -> None:
    base, cert = https_base
    sha = repo.commit_and_push({"cm.yaml": "v: 1\n"}, "over https")
    url = f"{base}{repo.name}.git"

    trusted = GitSource(tmp_path / "a", repositories=[RepoSpec(url=base, ca_file=str(cert))])
    assert await trusted.resolve(url, "main") == sha
    assert (await trusted.fetch(url, sha)).message == "over https"

    with pytest.raises(SourceError, match=r"ls-remote failed: .*CERTIFICATE_VERIFY_FAILED"):
        await GitSource(tmp_path / "b").resolve(url, "main")

    skipping = GitSource(tmp_path / "c", repositories=[RepoSpec(url=base, insecure_skip_tls_verify=True)])
    assert await skipping.resolve(url, "main") == sha
