"""Just enough of the Kubernetes API for the benchmarks: aiohttp on the admin kubeconfig's credentials."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import ssl
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from bench.apps import Kind, Obj
from bench.console import BenchError, say


def _named(entries: Sequence[Obj], name: str, what: str, source: Path) -> Obj:
    for entry in entries or ():
        if entry.get("name") == name:
            return dict(entry.get(what) or {})
    raise BenchError(f"{source}: no {what} named {name!r}")


def _kubeconfig(path: Path) -> tuple[str, ssl.SSLContext, dict[str, str]]:
    """Server URL, TLS context and auth headers of the current context (token or client-cert files)."""
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BenchError(f"cannot read kubeconfig {path}: {exc}") from exc
    context = _named(config.get("contexts", []), config.get("current-context", ""), "context", path)
    cluster = _named(config.get("clusters", []), context.get("cluster", ""), "cluster", path)
    user = _named(config.get("users", []), context.get("user", ""), "user", path)
    tls = ssl.create_default_context()
    if "certificate-authority-data" in cluster:
        tls.load_verify_locations(cadata=base64.b64decode(cluster["certificate-authority-data"]).decode())
    elif "certificate-authority" in cluster:
        tls.load_verify_locations(cafile=str(path.parent / cluster["certificate-authority"]))
    headers: dict[str, str] = {}
    if user.get("token"):
        headers["Authorization"] = f"Bearer {user['token']}"
    elif user.get("client-certificate") and user.get("client-key"):
        tls.load_cert_chain(str(path.parent / user["client-certificate"]), str(path.parent / user["client-key"]))
    else:
        raise BenchError(f"{path}: the benchmarks need a token or client-certificate/client-key files")
    return str(cluster["server"]).rstrip("/"), tls, headers


class Kube:
    """Just enough of the Kubernetes API for the benchmarks, on one keep-alive aiohttp session."""

    def __init__(self, kubeconfig: Path, *, connections: int = 64) -> None:
        self.server, self._tls, self._headers = _kubeconfig(kubeconfig)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(ssl=self._tls, limit=self._connections)
            self._session = aiohttp.ClientSession(connector=connector, headers=self._headers,
                                                  timeout=aiohttp.ClientTimeout(total=60))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(self, method: str, path: str, *, body: Any = None, query: Mapping[str, str] | None = None,
                   content_type: str = "application/json", missing_ok: bool = False) -> Obj | None:
        """One request; the decoded answer, None for a 404 when `missing_ok`, else BenchError on failure."""
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        try:
            async with self.session.request(method, self.server + path, data=data, params=query or {},
                                            headers=headers) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BenchError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        if resp.status == 404 and missing_ok:
            return None
        if resp.status >= 300:
            raise BenchError(f"{method} {path}: HTTP {resp.status}: {text[:500]}")
        result: Obj = json.loads(text) if text else {}
        return result

    async def get(self, kind: Kind, namespace: str, name: str) -> Obj | None:
        return await self.call("GET", kind.path(namespace, name), missing_ok=True)

    async def merge_patch(self, kind: Kind, namespace: str, name: str, patch: Obj, *, manager: str) -> Obj:
        result = await self.call("PATCH", kind.path(namespace, name), body=patch, query={"fieldManager": manager},
                                 content_type="application/merge-patch+json")
        assert result is not None
        return result

    async def create_namespace(self, name: str, labels: Mapping[str, str]) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": dict(labels)}}
        await self.call("POST", "/api/v1/namespaces", body=body)

    async def delete_namespaces(self, names: Iterable[str], *, wait: float) -> list[str]:
        """Delete the namespaces and wait up to `wait` seconds until they are gone; returns those still there."""
        pending = list(names)
        for name in pending:
            try:
                await self.call("DELETE", f"/api/v1/namespaces/{name}", missing_ok=True)
            except BenchError as exc:
                say(f"warning: could not delete namespace {name}: {exc}")
        deadline = time.monotonic() + wait
        while pending and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            pending = [n for n in pending if await self.call("GET", f"/api/v1/namespaces/{n}", missing_ok=True)]
        return pending

    async def watch_until(self, kind: Kind, namespace: str, name: str, resource_version: str,
                          done: Callable[[Obj], bool], *, within: float) -> float:
        """time.monotonic() when a watch event (after `resource_version`) shows the object satisfying `done`.

        Raises TimeoutError after `within` seconds, BenchError when the watch is refused or breaks.
        """
        query = {"watch": "1", "fieldSelector": f"metadata.name={name}", "resourceVersion": resource_version,
                 "timeoutSeconds": str(math.ceil(within) + 5)}
        no_limit = aiohttp.ClientTimeout(total=None, sock_read=within + 30)
        async with asyncio.timeout(within), self.session.get(
            self.server + kind.path(namespace), params=query, timeout=no_limit
        ) as resp:
            if resp.status != 200:
                raise BenchError(f"watch of {kind.kind} {namespace}/{name}: HTTP {resp.status}: "
                                 f"{(await resp.text())[:300]}")
            async for line in resp.content:
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    raise BenchError(f"watch of {kind.kind} {namespace}/{name} failed: {event.get('object')}")
                if event.get("type") in ("ADDED", "MODIFIED") and done(event["object"]):
                    return time.monotonic()
        raise BenchError(f"watch of {kind.kind} {namespace}/{name} ended early")
