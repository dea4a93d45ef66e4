"""`POST /api/webhook`: git push notifications that refresh the apps on the pushed repository at once.

Providers, told apart by their headers:

    GitHub     X-GitHub-Event      X-Hub-Signature-256: sha256=HMAC-SHA256(secret, body)
    Gitea      X-Gitea-Event       X-Gitea-Signature:   HMAC-SHA256(secret, body), hex
    GitLab     X-Gitlab-Event      X-Gitlab-Token:      the secret itself
    Bitbucket  X-Event-Key         X-Hub-Signature:     sha256=HMAC-SHA256(secret, body)
    generic    anything else       X-Gitops-Token:      the secret itself; body {"repo": URL, "ref": REF}

Order of checks: the body is capped before anything reads it; then parsed; the secret
is the one of the `[[repositories]]` entry matching the payload's repository (after
URL normalization), else `[agent]`'s; it is compared in constant time; a delivery id
seen before is ignored; only then are apps refreshed. A repository with no secret
configured anywhere is refused: an unauthenticated endpoint should not make the agent
hammer git servers.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qs

from aiohttp import web

from agent.config import Settings
from agent.errors import SourceError
from agent.metrics import Metrics
from agent.server.views import loads_bounded
from agent.shard.peers import FORWARDED
from agent.source import CredentialStore, read_secret, redact_url

log = logging.getLogger(__name__)

READ_CHUNK = 64 * 1024
REMEMBERED_DELIVERIES = 10_000
_DELIVERY_HEADERS = {
    "github": "X-GitHub-Delivery", "gitea": "X-Gitea-Delivery", "gitlab": "X-Gitlab-Event-UUID",
    "bitbucket": "X-Request-UUID", "generic": "X-Gitops-Delivery",
}
_PUSH_EVENTS = {"push", "tag push hook", "push hook", "repo:push", "repo:refs_changed"}


class Refresher(Protocol):
    def refresh_repository(self, urls: Iterable[str], ref: str) -> list[str]: ...


@dataclass(frozen=True)
class Push:
    """What a delivery says: the repository (every URL the payload gives for it), refs and event."""

    urls: tuple[str, ...]
    refs: tuple[str, ...]
    event: str

    @property
    def is_push(self) -> bool:
        return self.event.lower() in _PUSH_EVENTS


class WebhookError(Exception):
    def __init__(self, status: int, result: str, message: str) -> None:
        super().__init__(message)
        self.status, self.result = status, result


# ----------------------------------------------------------------- pure parts


def detect_provider(headers: Mapping[str, str]) -> str:
    # Gitea also sends X-GitHub-Event, so it is asked first.
    if "X-Gitea-Event" in headers:
        return "gitea"
    if "X-GitHub-Event" in headers:
        return "github"
    if "X-Gitlab-Event" in headers:
        return "gitlab"
    if "X-Event-Key" in headers:
        return "bitbucket"
    return "generic"


def signature_valid(provider: str, headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    """Whether the delivery proves knowledge of `secret`; every comparison is constant-time."""
    key = secret.encode()
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    if provider == "github":
        return _same(headers.get("X-Hub-Signature-256", ""), "sha256=" + digest)
    if provider == "gitea":
        return _same(headers.get("X-Gitea-Signature", ""), digest)
    if provider == "bitbucket":
        return _same(headers.get("X-Hub-Signature", ""), "sha256=" + digest)
    if provider == "gitlab":
        return _same(headers.get("X-Gitlab-Token", ""), secret)
    return _same(headers.get("X-Gitops-Token", ""), secret)


def _same(given: str, expected: str) -> bool:
    return bool(given) and hmac.compare_digest(given.strip().encode(), expected.encode())


def parse_payload(headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The JSON payload, also when GitHub sends it form-encoded (`payload=...`)."""
    try:
        if headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            form = parse_qs(body.decode("utf-8"), strict_parsing=False)
            text = form.get("payload", [""])[0]
        else:
            text = body.decode("utf-8")
        payload = loads_bounded(text)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookError(400, "bad_request", f"the body is not a JSON payload: {exc}") from exc
    if not isinstance(payload, dict):
        raise WebhookError(400, "bad_request", "the payload must be a JSON object")
    return payload


def parse_push(provider: str, headers: Mapping[str, str], payload: Mapping[str, Any]) -> Push:
    """Repository URLs, refs and the event of a delivery; a payload naming no repository is refused."""
    if provider in ("github", "gitea"):
        repo = _table(payload, "repository")
        urls = _strings(repo, "clone_url", "html_url", "ssh_url", "git_url", "svn_url")
        event = headers.get("X-Gitea-Event" if provider == "gitea" else "X-GitHub-Event", "")
        push = Push(urls, _strings(payload, "ref"), event)
    elif provider == "gitlab":
        project, repo = _table(payload, "project"), _table(payload, "repository")
        urls = (_strings(project, "git_http_url", "git_ssh_url", "web_url", "http_url", "ssh_url")
                + _strings(repo, "git_http_url", "git_ssh_url", "url", "homepage"))
        push = Push(urls, _strings(payload, "ref"), headers.get("X-Gitlab-Event", ""))
    elif provider == "bitbucket":
        push = _bitbucket(payload, headers.get("X-Event-Key", ""))
    else:
        push = Push(_strings(payload, "repo"), _strings(payload, "ref"), "push")
    if not push.urls:
        raise WebhookError(400, "bad_request", "the payload names no repository URL")
    return push


def _bitbucket(payload: Mapping[str, Any], event: str) -> Push:
    repo = _table(payload, "repository")
    links = _table(repo, "links")
    urls = list(_strings(_table(links, "html"), "href"))
    for name in ("clone", "self"):
        items = links.get(name)
        if isinstance(items, list):
            urls += [item["href"] for item in items if isinstance(item, dict) and isinstance(item.get("href"), str)]
    refs: list[str] = []
    changes = _table(payload, "push").get("changes") or payload.get("changes") or []
    for change in changes if isinstance(changes, list) else []:
        if not isinstance(change, dict):
            continue
        server_ref = _table(change, "ref").get("id")  # Bitbucket Server / Data Center
        if isinstance(server_ref, str):
            refs.append(server_ref)
        for side in ("new", "old"):  # Bitbucket Cloud; "old" when the branch was deleted
            target = change.get(side)
            if isinstance(target, dict) and isinstance(target.get("name"), str):
                prefix = "refs/tags/" if target.get("type") == "tag" else "refs/heads/"
                refs.append(prefix + target["name"])
                break
    return Push(tuple(dict.fromkeys(urls)), tuple(dict.fromkeys(refs)), event)


def _table(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _strings(data: Mapping[str, Any], *keys: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for k in keys if isinstance(v := data.get(k), str) and v))


# ----------------------------------------------------------------- the receiver


class WebhookReceiver:
    """Checks deliveries and turns valid pushes into refreshes."""

    def __init__(self, settings: Settings, refresher: Refresher, metrics: Metrics) -> None:
        self._agent = settings.agent
        self._credentials = CredentialStore(settings.repositories)
        self._refresher = refresher
        self._metrics = metrics
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()
        # With sharding: passes a verified push on to the other replicas (agent.server.sharding);
        # the names of the apps they refreshed.
        self.forward: Callable[[Mapping[str, str], bytes], Awaitable[list[str]]] | None = None

    def reconfigure(self, settings: Settings) -> None:
        """Take reloaded webhook secrets, body limit and [[repositories]] (a configuration reload)."""
        self._agent = settings.agent
        self._credentials = CredentialStore(settings.repositories)

    async def handle(self, request: web.Request) -> web.Response:
        provider = detect_provider(request.headers)
        try:
            status, body = await self._receive(provider, request)
        except WebhookError as exc:
            self._metrics.observe_webhook(provider, exc.result)
            log.warning("webhook refused", extra={"error": f"{provider}: {exc}"})
            return web.json_response({"error": str(exc)}, status=exc.status)
        self._metrics.observe_webhook(provider, body["result"])
        return web.json_response(body, status=status)

    async def _receive(self, provider: str, request: web.Request) -> tuple[int, dict[str, Any]]:
        body = await read_capped(request, self._agent.webhook_max_body)
        push = parse_push(provider, request.headers, parse_payload(request.headers, body))
        urls = self._verified_urls(provider, request.headers, body, push.urls)
        delivery = request.headers.get(_DELIVERY_HEADERS[provider], "")
        if delivery and self._replayed(provider, delivery):
            return 200, {"result": "replayed", "ignored": f"delivery {delivery} was already received"}
        if not push.is_push:
            return 200, {"result": "ignored", "ignored": f"event {push.event!r} is not a push"}
        names: list[str] = []
        for ref in push.refs or ("",):
            names += [n for n in self._refresher.refresh_repository(urls, ref) if n not in names]
        if self.forward is not None and FORWARDED not in request.headers:  # a forwarded one goes no further
            names += [n for n in await self.forward(request.headers, body) if n not in names]
        log.info("webhook push: %s refreshed %s", ", ".join(push.refs) or "no ref", ", ".join(names) or "no app",
                 extra={"repo": redact_url(urls[0])})
        return 202, {"result": "refreshed" if names else "no_match", "refreshed": names}

    def _verified_urls(self, provider: str, headers: Mapping[str, str], body: bytes,
                       urls: tuple[str, ...]) -> tuple[str, ...]:
        """The payload URLs whose secret the delivery proves; 401 when none."""
        by_secret: dict[str, list[str]] = {}
        for url in urls:
            secret = self._secret_for(url)
            if secret:
                by_secret.setdefault(secret, []).append(url)
        if not by_secret:
            raise WebhookError(401, "unauthorized", "no webhook secret is configured for this repository")
        verified = [url for secret, group in by_secret.items()
                    if signature_valid(provider, headers, body, secret) for url in group]
        if not verified:
            raise WebhookError(401, "unauthorized", "signature or token missing or wrong")
        return tuple(verified)

    def _secret_for(self, url: str) -> str:
        spec = self._credentials.match_normalized(url)
        try:
            if spec is not None and (spec.webhook_secret_env or spec.webhook_secret_file):
                return read_secret(spec.url, env=spec.webhook_secret_env, file=spec.webhook_secret_file,
                                   key_env="webhook_secret_env", key_file="webhook_secret_file")
            return read_secret("[agent]", env=self._agent.webhook_secret_env, file=self._agent.webhook_secret_file,
                               key_env="webhook_secret_env", key_file="webhook_secret_file")
        except SourceError as exc:
            raise WebhookError(500, "error", f"webhook secret unavailable: {exc}") from exc

    def _replayed(self, provider: str, delivery: str) -> bool:
        key = (provider, delivery)
        if key in self._seen:
            return True
        self._seen[key] = None
        if len(self._seen) > REMEMBERED_DELIVERIES:
            self._seen.popitem(last=False)
        return False


async def read_capped(request: web.Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to exceed `limit` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise WebhookError(413, "too_large", f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(READ_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise WebhookError(413, "too_large", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def add_routes(app: web.Application, receiver: WebhookReceiver) -> None:
    app.router.add_post("/api/webhook", receiver.handle)
