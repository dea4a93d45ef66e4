"""The API of a sharded agent: any replica answers for every app.

    forward_to_owner   a request about one app (get, diff, refresh, sync, rollback, resume) that
                       runs on another replica is sent there with the caller's Authorization and
                       the owner's answer returned as it is. When the owner does not answer (or
                       no replica runs the app while it moves): a GET is answered here from the
                       shared state, marked `owner_unreachable`; anything else is 503 with
                       Retry-After, as nothing here may act for the app.
    sharded_list       the list: this replica's own apps, and each live peer's (`?scope=local`,
                       asked with the caller's Authorization, at most LIST_TIMEOUT each); an app
                       whose owner did not answer is shown from the shared state, marked.
    webhook_forwarder  a verified push delivery is passed to every live peer, which checks its
                       signature itself and refreshes the apps it runs.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from aiohttp import web

from agent.server.views import error_response
from agent.shard.peers import FORWARDED, LIST_TIMEOUT, OPERATION_TIMEOUT, READ_TIMEOUT, Peers, PeerUnavailable

APPS_PREFIX = "/api/v1/applications/"
OWNER_PROBLEM = "owner_problem"  # request key: why the owner's answer is not the one given
RETRY_SECONDS = "2"
_FORWARDED_HEADERS = ("Authorization", "Content-Type", "Accept")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WebhookForward = Callable[[Mapping[str, str], bytes], Awaitable[list[str]]]


class ShardView(Protocol):
    """What the API asks of the coordinator (agent.shard.coordinator)."""

    identity: str

    def owner_of(self, app: str) -> str: ...

    def address_of(self, identity: str) -> str: ...

    def alive(self, identity: str) -> bool: ...

    def peers(self) -> dict[str, str]: ...

    def runs(self, app: str) -> bool: ...


SHARDS: web.AppKey[ShardView] = web.AppKey("shards")
PEERS: web.AppKey[Peers] = web.AppKey("peers", Peers)


def forwarded(request: web.Request) -> bool:
    return FORWARDED in request.headers


@web.middleware
async def forward_to_owner(request: web.Request, handler: Handler) -> web.StreamResponse:
    shards, name = request.app.get(SHARDS), request.match_info.get("name")
    if shards is None or not name or forwarded(request) or not request.path.startswith(APPS_PREFIX):
        return await handler(request)
    owner = shards.owner_of(name)
    if owner == shards.identity:
        return await handler(request)
    address = shards.address_of(owner) if owner and shards.alive(owner) else ""
    if address:
        try:
            return await _forward(request, address)
        except PeerUnavailable as exc:
            problem = f"replica {owner}, which runs application {name}, did not answer: {exc}"
    elif owner:
        problem = f"replica {owner}, which ran application {name}, is not alive; another takes it over shortly"
    else:
        problem = f"no replica runs application {name} right now (it is moving to another); try again shortly"
    if request.method in ("GET", "HEAD"):
        request[OWNER_PROBLEM] = problem
        return await handler(request)  # from the shared state, as this replica follows it
    response = error_response(503, problem)
    response.headers["Retry-After"] = RETRY_SECONDS
    return response


async def _forward(request: web.Request, address: str) -> web.Response:
    body = await request.read() if request.can_read_body else None
    headers = {key: request.headers[key] for key in _FORWARDED_HEADERS if key in request.headers}
    waits = request.method == "POST" and request.path.rsplit("/", 1)[-1] in ("sync", "rollback")
    answer = await request.app[PEERS].send(address, request.method, request.path_qs, headers=headers, body=body,
                                           deadline=OPERATION_TIMEOUT if waits else READ_TIMEOUT, kind="forward")
    response = web.Response(status=answer.status, body=answer.body, headers={"Content-Type": answer.content_type})
    if answer.retry_after is not None:
        response.headers["Retry-After"] = answer.retry_after
    return response


def owner_fields(request: web.Request, name: str) -> dict[str, Any]:
    """`owner` (and why its own answer is missing) for an app's detail; nothing without sharding."""
    shards = request.app.get(SHARDS)
    if shards is None:
        return {}
    fields: dict[str, Any] = {"owner": shards.owner_of(name) or None}
    if OWNER_PROBLEM in request:
        fields["owner_unreachable"] = request[OWNER_PROBLEM]
    return fields


async def sharded_list(request: web.Request, local: Callable[[bool], list[tuple[str, bytes]]],
                       fallback: Callable[[str, dict[str, Any]], bytes]) -> web.Response:
    """`local(own_only)`: (name, encoded summary) of the apps the caller may see (with `own_only`, those
    running here). `fallback(name, extra)`: the summary of an app, from the shared state, with `extra`."""
    shards = request.app[SHARDS]
    if request.query.get("scope") == "local" or forwarded(request):
        return _json([encoded for _, encoded in local(True)])
    peers = shards.peers()
    answers = await asyncio.gather(*(_peer_list(request, identity, address) for identity, address in peers.items()))
    remote: dict[str, bytes] = {}
    answered = set()
    for identity, items in answers:
        if items is not None:
            answered.add(identity)
            remote.update({str(item.get("name")): json.dumps(item).encode() for item in items})
    parts: dict[str, bytes] = {}
    for name, encoded in local(False):
        owner = shards.owner_of(name)
        if owner == shards.identity:
            parts[name] = encoded
        elif name in remote:
            parts[name] = remote.pop(name)
        else:
            why = "no replica runs it right now (it is moving)" if not owner else \
                f"replica {owner} did not answer" if owner in peers and owner not in answered else \
                f"replica {owner} is not alive"
            parts[name] = fallback(name, {"owner": owner or None, "owner_unreachable": why})
    parts.update(remote)  # apps a peer knows and this replica does not (yet)
    return _json([parts[name] for name in sorted(parts)])


async def _peer_list(request: web.Request, identity: str, address: str) -> tuple[str, list[dict[str, Any]] | None]:
    headers = {key: request.headers[key] for key in ("Authorization",) if key in request.headers}
    try:
        answer = await request.app[PEERS].send(address, "GET", "/api/v1/applications?scope=local", headers=headers,
                                               body=None, deadline=LIST_TIMEOUT, kind="list")
    except PeerUnavailable:
        return identity, None
    if answer.status != 200:
        return identity, None
    try:
        items = json.loads(answer.body)
    except ValueError:
        return identity, None
    return identity, [item for item in items if isinstance(item, dict)] if isinstance(items, list) else None


def _json(parts: list[bytes]) -> web.Response:
    return web.Response(body=b"[" + b",".join(parts) + b"]", content_type="application/json")


_WEBHOOK_SKIPPED = ("x-forwarded-", "x-real-ip")


def webhook_forwarder(shards: ShardView, peers: Peers) -> WebhookForward:
    """Pass a verified delivery on to every live peer; the names of the apps they refreshed."""

    async def forward(headers: Mapping[str, str], body: bytes) -> list[str]:
        sent = {key: value for key, value in headers.items()
                if (key.lower().startswith("x-") and not key.lower().startswith(_WEBHOOK_SKIPPED))
                or key.lower() == "content-type"}

        async def one(address: str) -> list[str]:
            try:
                answer = await peers.send(address, "POST", "/api/webhook", headers=sent, body=body,
                                          deadline=READ_TIMEOUT, kind="webhook")
                refreshed = json.loads(answer.body).get("refreshed") or []
            except (PeerUnavailable, ValueError, AttributeError):
                return []
            return [str(name) for name in refreshed] if isinstance(refreshed, list) else []

        results = await asyncio.gather(*(one(address) for address in shards.peers().values()))
        return [name for names in results for name in names]

    return forward
