"""A small Kubernetes client over kubernetes-asyncio's ApiClient.

kubernetes-asyncio supplies configuration (kubeconfig with exec plugins and token
refresh; the in-cluster service account is `incluster`'s) and the TLS/aiohttp session; requests are
plain JSON in and plain dicts out, through one method, so that every call is counted,
mapped to one error tree and easy to reason about.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from agent import FIELD_MANAGER
from agent.errors import (
    KubeConflict,
    KubeError,
    KubeForbidden,
    KubeInvalid,
    KubeNotFound,
    KubeUnreachable,
    NotLeader,
    WatchExpired,
    api_error_class,
)
from agent.kube._library import Configuration
from agent.kube.access import load_configuration, rest_client
from agent.kube.deletion import Deleted
from agent.kube.discovery import ApiResource, Discovery
from agent.kube.ratelimit import TokenBucket
from agent.model import KubeObject, ObjectRef

REQUEST_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0  # a server that does not even accept the connection is down: say so well before 30 s
WATCH_SECONDS = 300
MAX_THROTTLED = 10  # attempts of one request the server answers with 429 (client-go's limit)
MAX_RETRY_AFTER = 30.0
LIST_PAGE = 500  # objects per page of a LIST (client-go's pager uses 500 too)
READ_BUFFER_BYTES = 2**21  # watch events carry whole objects (etcd allows 1.5 MiB), as kubernetes-asyncio sets


@dataclass(frozen=True, slots=True)
class KubeRequest:
    """One request sent to the API server, as the metrics count it."""

    verb: str  # the HTTP method in lowercase, or "watch"
    kind: str  # the kind of the objects it is about; "" for discovery, /version and other paths
    path: str  # without the query: it names the resource, namespace and object (agent.metrics_argocd)
    code: int  # the HTTP status; 0 when the server did not answer


RequestObserver = Callable[[KubeRequest], None]


class ReachabilityListener(Protocol):
    """Told whether each request got an answer at all (agent.kube.reachability)."""

    def answered(self) -> None: ...

    def unreachable(self, error: str) -> None: ...


@dataclass(frozen=True)
class Page:
    """One page of a LIST: its objects, and the resourceVersion of the list (to watch from)."""

    items: list[KubeObject]
    resource_version: str


class KubeClient:
    """Requests against one API server, with cached discovery."""

    def __init__(self, configuration: Configuration, *, observer: RequestObserver | None = None,
                 limiter: TokenBucket | None = None) -> None:
        self._configuration = configuration
        self._rest = rest_client(configuration)
        self._observer = observer
        self._limiter = limiter
        self.discovery = Discovery(self._get)
        self._may_write: Callable[[], bool] = _always
        self._listeners: list[ReachabilityListener] = []

    @classmethod
    async def connect(cls, kubeconfig: str = "", context: str = "", *, observer: RequestObserver | None = None,
                      limiter: TokenBucket | None = None) -> KubeClient:
        return cls(await load_configuration(kubeconfig, context), observer=observer, limiter=limiter)

    async def close(self) -> None:
        await self._rest.close()

    @property
    def host(self) -> str:
        return str(self._configuration.host)

    @property
    def limiter(self) -> TokenBucket | None:
        """The request rate limit (its `rate` moves when adaptive)."""
        return self._limiter

    async def request(
        self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
        content_type: str = "application/json", kind: str = "", ref: ObjectRef | None = None,
        gated: bool = False, paced: bool = True,
    ) -> Any:
        """One API call; returns the decoded JSON body, raises a KubeError on failure.

        Paced by the token bucket unless `paced` is false; a 429 is retried after the server's
        Retry-After. A `gated` request (a write to a managed object) is refused with NotLeader,
        right before it would be sent, while the write gate is closed.
        """
        for attempt in range(1, MAX_THROTTLED + 1):
            status, payload, retry_after = await self._send(method, path, query, body, content_type, kind, ref,
                                                            gated, paced)
            if status != 429 or attempt == MAX_THROTTLED:
                break
            # Up to 10% later than asked, so requests refused together do not all return together.
            await asyncio.sleep(retry_after * (1 + random.random() / 10))
        if 200 <= status < 300:
            return json.loads(payload) if payload else None
        raise _api_error(status, payload, ref)

    async def _send(self, method: str, path: str, query: dict[str, str] | None, body: Any, content_type: str,
                    kind: str, ref: ObjectRef | None, gated: bool = False,
                    paced: bool = True) -> tuple[int, bytes, float]:
        if self._limiter is not None and paced:
            await self._limiter.acquire()
        if gated and not self._may_write():
            raise NotLeader("not the leader: writes to the cluster are stopped", ref=ref)
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        sent = time.monotonic()
        try:
            response = await self._call(method, path, query, headers, body, _REQUEST_DEADLINE)
            async with response:
                payload = await response.read()
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._observe(method, kind, path, 0)
            raise self._unreachable(f"{self.host}: {type(exc).__name__}: {exc}", ref) from exc
        if self._limiter is not None:  # an adaptive rate follows the answers (agent.kube.ratelimit)
            self._limiter.answered(status=status, seconds=time.monotonic() - sent, write=method != "GET")
        self._observe(method, kind, path, status)
        return status, payload, retry_after

    async def watch(self, resource: ApiResource, *, selector: str, resource_version: str,
                    timeout_seconds: int = WATCH_SECONDS, namespace: str = "") -> AsyncIterator[dict[str, Any]]:
        """Watch events of one resource type in all namespaces (or in `namespace`), from `resource_version` on.

        Ends when the server closes the watch (after about `timeout_seconds`); raises a
        KubeError for a refused watch or an ERROR event, WatchExpired when the version is too old.
        """
        if self._limiter is not None:
            await self._limiter.acquire()
        query = {"watch": "1", "labelSelector": selector, "resourceVersion": resource_version,
                 "allowWatchBookmarks": "true", "timeoutSeconds": str(timeout_seconds)}
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=timeout_seconds + 30)
        try:
            response = await self._call("GET", resource.path(namespace), query, {"Accept": "application/json"}, None,
                                        timeout)
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            self._observe("WATCH", resource.kind, resource.path(namespace), 0)
            raise self._unreachable(f"{self.host}: {type(exc).__name__}: {exc}", None) from exc
        self._observe("WATCH", resource.kind, resource.path(namespace), response.status)
        async with response:
            if response.status != 200:
                raise _api_error(response.status, await response.read(), None)
            try:
                async for line in response.content:
                    if line.strip():
                        yield _event(json.loads(line))
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise KubeUnreachable(f"{self.host}: watch of {resource.kind} broke: {exc}") from exc

    async def _call(self, method: str, path: str, query: dict[str, str] | None, headers: dict[str, str], body: Any,
                    deadline: float | aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        """One HTTP exchange through kubernetes-asyncio's REST layer (TLS, proxy), with our auth header."""
        for setting in (await self._configuration.auth_settings()).values():
            if setting["in"] == "header" and setting["value"]:
                headers[setting["key"]] = setting["value"]
        response: aiohttp.ClientResponse = await self._rest.request(
            method, f"{self._configuration.host}{path}", query_params=dict(query or {}), headers=headers,
            body=body, _preload_content=False, _request_timeout=deadline,
        )
        return response

    def unpaced(self) -> UnpacedRequests:
        """Requests that do not wait for the token bucket: leader election's. Its renewals must not
        queue behind a burst of reconciles (or of anything else that spends tokens): a late
        renewal costs the Lease."""
        return UnpacedRequests(self)

    def gate_writes(self, may_write: Callable[[], bool]) -> None:
        """Refuse applies (not dry runs) and deletes whenever `may_write()` is false (leader election)."""
        self._may_write = may_write

    def add_listener(self, listener: ReachabilityListener) -> None:
        """Tell `listener` whether each request from now on gets an answer."""
        self._listeners.append(listener)

    def remove_listener(self, listener: ReachabilityListener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _observe(self, verb: str, kind: str, path: str, status: int) -> None:
        if self._observer is not None:
            self._observer(KubeRequest(verb.lower(), kind, path, status))
        if status:
            for listener in self._listeners:
                listener.answered()

    def _unreachable(self, message: str, ref: ObjectRef | None) -> KubeUnreachable:
        for listener in self._listeners:
            listener.unreachable(message)
        return KubeUnreachable(message, ref=ref)

    async def ping(self) -> str:
        """The server's version; raises KubeUnreachable when it does not answer."""
        version = await self.request("GET", "/version")
        return str(version.get("gitVersion", "unknown"))

    async def _get(self, path: str) -> dict[str, Any]:
        result: dict[str, Any] = await self.request("GET", path)
        return result

    async def resource(self, api_version: str, kind: str) -> ApiResource | None:
        """Discovery for one kind; refreshed once when the kind is not (yet) known."""
        return await self.discovery.resource(api_version, kind)

    def forget_discovery(self) -> None:
        """Forget discovered resources, e.g. after CRDs were created or changed."""
        self.discovery.forget()

    async def listable_resources(self, group_version: str) -> list[ApiResource]:
        return await self.discovery.listable_resources(group_version)

    async def _resource_for(self, obj: KubeObject) -> ApiResource:
        resource = await self.resource(obj["apiVersion"], obj["kind"])
        if resource is None:
            raise KubeInvalid(f"the server has no resource for {obj['kind']} in {obj['apiVersion']}",
                              ref=ObjectRef.of(obj))
        return resource

    async def apply(self, obj: KubeObject, *, dry_run: bool = False, force: bool = True) -> KubeObject:
        """Server-side apply as field manager `gitops-agent`, conflicts forced by default."""
        resource = await self._resource_for(obj)
        meta = obj["metadata"]
        query = {"fieldManager": FIELD_MANAGER, "force": "true" if force else "false"}
        if dry_run:
            query["dryRun"] = "All"
        result: KubeObject = await self.request(
            "PATCH", resource.path(meta.get("namespace", ""), meta["name"]), query=query, body=obj,
            content_type="application/apply-patch+yaml", kind=resource.kind, ref=ObjectRef.of(obj), gated=not dry_run,
        )
        return result

    async def list_labelled(self, api_version: str, kind: str, selector: str, *,
                            namespaces: Iterable[str] = ()) -> list[KubeObject]:
        """Every object of one kind, in all namespaces, matching a label selector.

        When listing across all namespaces is forbidden (an agent given Roles in some
        namespaces only), a namespaced kind is listed in each of `namespaces` instead; a 403
        there, or for a cluster-scoped kind, is raised with the API's message.
        """
        resource = await self.resource(api_version, kind)
        if resource is None:
            return []
        try:
            return [item async for page in self.pages(resource, selector=selector) for item in page.items]
        except KubeForbidden:
            if not resource.namespaced or not namespaces:
                raise
        return [item for namespace in sorted(set(namespaces))
                async for page in self.pages(resource, selector=selector, namespace=namespace) for item in page.items]

    async def pages(self, resource: ApiResource, *, selector: str, namespace: str = "") -> AsyncIterator[Page]:
        """A LIST in pages of LIST_PAGE objects (`limit` and `continue`), items with apiVersion and kind
        set: ten thousand Deployments in one answer are tens of megabytes of JSON and several
        times that as objects, all at once. Pages are one consistent snapshot (the server's
        `continue`); a snapshot too old to continue is answered 410 Gone (KubeError)."""
        query = {"labelSelector": selector, "limit": str(LIST_PAGE)}
        while True:
            listing = await self.request("GET", resource.path(namespace), query=query, kind=resource.kind)
            items: list[KubeObject] = listing.get("items") or []
            for item in items:  # list items carry neither apiVersion nor kind
                item["apiVersion"], item["kind"] = resource.api_version, resource.kind
            meta = listing.get("metadata") or {}
            yield Page(items, str(meta.get("resourceVersion", "")))
            if not meta.get("continue"):
                return
            query = {**query, "continue": str(meta["continue"])}

    async def delete(self, obj: KubeObject, *, propagation: str = "Foreground",
                     only_if: dict[str, str] | None = None) -> Deleted:
        """Delete the object, only while it still has the uid and resourceVersion in `only_if`
        (see `preconditions`): a stale read must never delete an object re-created meanwhile.

        CHANGED (the API server's 409) when the object no longer matches; GONE when it was not there.
        """
        resource = await self._resource_for(obj)
        meta = obj["metadata"]
        body: dict[str, Any] = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        if only_if:
            body["preconditions"] = dict(only_if)
        try:
            await self.request("DELETE", resource.path(meta.get("namespace", ""), meta["name"]), body=body,
                               kind=resource.kind, ref=ObjectRef.of(obj), gated=True)
        except KubeNotFound:
            return Deleted.GONE
        except KubeConflict:
            if only_if:
                return Deleted.CHANGED
            raise
        return Deleted.DELETED

    async def get(self, obj: KubeObject) -> KubeObject | None:
        """The live object with the identity of `obj`, or None."""
        resource = await self._resource_for(obj)
        meta = obj["metadata"]
        try:
            live: KubeObject = await self.request(
                "GET", resource.path(meta.get("namespace", ""), meta["name"]), kind=resource.kind,
                ref=ObjectRef.of(obj),
            )
        except KubeNotFound:
            return None
        return live


class UnpacedRequests:
    """`KubeClient.request` without the token bucket (see `KubeClient.unpaced`)."""

    def __init__(self, client: KubeClient) -> None:
        self._client = client

    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
                      content_type: str = "application/json", kind: str = "") -> Any:
        return await self._client.request(method, path, query=query, body=body, content_type=content_type,
                                          kind=kind, paced=False)


def _always() -> bool:
    return True


_REQUEST_DEADLINE = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT, sock_connect=CONNECT_TIMEOUT)


def _event(event: dict[str, Any]) -> dict[str, Any]:
    """A watch event as it came, unless it is an ERROR: that is raised."""
    if event.get("type") != "ERROR":
        return event
    status = event.get("object") or {}
    code = int(status.get("code") or 0)
    error = WatchExpired if code == 410 else KubeError
    raise error(str(status.get("message", "watch error")), status=code)


def _retry_after(value: str | None) -> float:
    """Seconds from a Retry-After header (the API server sends whole seconds), within sane bounds."""
    try:
        seconds = float(value) if value else 1.0
    except ValueError:
        seconds = 1.0
    if math.isnan(seconds):  # float() takes "nan", and asyncio.sleep(nan) never returns
        seconds = 1.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def _api_error(status: int, payload: bytes, ref: ObjectRef | None) -> KubeError:
    try:
        body = json.loads(payload)
        message, reason = str(body.get("message", "")), str(body.get("reason", ""))
    except (ValueError, AttributeError):
        message, reason = payload.decode("utf-8", "replace")[:500], ""
    return api_error_class(status)(message or f"HTTP {status}", status=status, reason=reason, ref=ref)
