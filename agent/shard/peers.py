"""Requests to the other replicas' APIs: forwarded calls, the list fan-out, webhooks.

No credential of its own: a forwarded API call carries the caller's `Authorization` header (the
owner authenticates and authorizes it as if it had been sent there, so nobody gains a right by
asking another replica), a forwarded webhook carries the git host's signature (the owner checks
it against its own secret). `X-Gitops-Agent-Forwarded` names the replica that forwarded: a
forwarded request is answered where it lands, never forwarded again (a header an outsider could
set only keeps its request from fanning out). Header values are never logged.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp

FORWARDED = "X-Gitops-Agent-Forwarded"
LIST_TIMEOUT = 2.0  # the list waits this long for each peer; a peer that does not answer is shown as such
READ_TIMEOUT = 10.0  # a forwarded GET or refresh
OPERATION_TIMEOUT = 3600.0  # a forwarded sync or rollback waits for the sync to end, as it would at its owner
CONNECT_TIMEOUT = 2.0


class PeerObserver(Protocol):
    def observe_peer_request(self, kind: str, result: str) -> None: ...


class PeerUnavailable(Exception):
    """The peer did not answer (refused, reset, timed out)."""


@dataclass(frozen=True)
class PeerAnswer:
    status: int
    body: bytes
    content_type: str
    retry_after: str | None = None


class Peers:
    def __init__(self, *, identity: str, ssl_context: ssl.SSLContext | None = None,
                 observer: PeerObserver | None = None) -> None:
        self.identity = identity
        self._ssl, self._observer = ssl_context, observer
        self._session: aiohttp.ClientSession | None = None

    async def send(self, address: str, method: str, path: str, *, headers: Mapping[str, str], body: bytes | None,
                   deadline: float, kind: str) -> PeerAnswer:
        """One request to the peer at `address` (`http(s)://host:port`); raises PeerUnavailable."""
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._ssl if self._ssl is not None else True)
            self._session = aiohttp.ClientSession(connector=connector)
        sent = {**headers, FORWARDED: self.identity}
        limit = aiohttp.ClientTimeout(total=deadline, sock_connect=CONNECT_TIMEOUT)
        try:
            async with self._session.request(method, address + path, headers=sent, data=body, timeout=limit,
                                             allow_redirects=False) as response:
                answer = PeerAnswer(response.status, await response.read(),
                                    response.headers.get("Content-Type", "application/json"),
                                    response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            self._observe(kind, "unreachable")
            raise PeerUnavailable(f"{address}: {type(exc).__name__}: {exc}".rstrip(": ")) from exc
        self._observe(kind, "answered")
        return answer

    def _observe(self, kind: str, result: str) -> None:
        if self._observer is not None:
            self._observer.observe_peer_request(kind, result)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
            await asyncio.sleep(0)  # let the connector's transports close before the loop goes


def peer_tls(cert_file: str) -> ssl.SSLContext | None:
    """Peers served over HTTPS ([auth] tls_cert_file) are verified with the system's CAs and, for a
    certificate of the agents' own, that certificate too; the advertised host must be one it names."""
    if not cert_file:
        return None
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=cert_file)
    return context
