"""A plain HTTP request: method, URL, headers, and a body (the service's template, or JSON).

The default body is `{"app", "trigger", "template", "recipient", "subject", "message", "id"}`.
`X-Notification-Id` carries the message's stable id, so a receiver can drop a repeat.
Any 2xx is delivered; 429 and 5xx are tried again; the URL (which may carry a token) is
never part of an error or a log line.
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qsl, urlsplit

import aiohttp

from agent.notifications.services.base import DeliveryFailed, Message, http_failure, read_secret, redact
from agent.notifications.settings import WebhookService


async def send_webhook(service: WebhookService, message: Message, *, session: aiohttp.ClientSession) -> None:
    url = service.url or read_secret(env=service.url_env, file=service.url_file, what="URL")
    headers = dict(service.headers)
    secrets = _url_secrets(url)
    for header, variable in service.headers_env:
        value = os.environ.get(variable, "")
        if not value:
            raise DeliveryFailed(f"the variable {variable} for header {header} is not set", retry=False)
        headers[header] = value
        secrets.append(value)
    if not any(name.lower() == "content-type" for name in headers):
        headers["Content-Type"] = "application/json"
    headers["X-Notification-Id"] = message.id
    body = message.body if message.body is not None else json.dumps({
        "app": message.app, "trigger": message.trigger, "template": message.template,
        "recipient": message.recipient, "subject": message.subject, "message": message.text, "id": message.id})
    try:
        async with session.request(service.method, url, data=body.encode(), headers=headers) as response:
            if not 200 <= response.status < 300:
                detail = redact(await response.text(), secrets)
                raise http_failure(response.status, after=response.headers.get("Retry-After"), detail=detail)
    except aiohttp.ClientError as exc:
        # aiohttp's messages may quote the URL; the scheme and host alone are not secret.
        raise DeliveryFailed(redact(f"{type(exc).__name__}: {exc}", secrets), retry=True) from exc
    except ValueError as exc:  # a URL aiohttp cannot parse (from a variable or file)
        raise DeliveryFailed(f"the URL is not valid: {type(exc).__name__}", retry=False) from exc


def _url_secrets(url: str) -> list[str]:
    """The URL and the parts of it that may be a token (long path segments, query values, a
    password), longest first, so an error that quotes only a part is redacted too."""
    parts = urlsplit(url)
    pieces = [segment for segment in parts.path.split("/") if len(segment) >= 8]
    pieces += [value for _, value in parse_qsl(parts.query) if value]
    if parts.password:
        pieces.append(parts.password)
    return sorted({url, *pieces}, key=len, reverse=True)
