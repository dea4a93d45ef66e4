"""Slack: `chat.postMessage` with a bot token (also what Mattermost's Slack-compatible API takes).

Slack answers 200 with `{"ok": false, "error": "..."}` for most failures; `ratelimited`
(or HTTP 429, with Retry-After) and Slack's own server errors are tried again, the rest
(`channel_not_found`, `not_in_channel`, `invalid_auth`) are not.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from agent.notifications.services.base import DeliveryFailed, Message, http_failure, read_secret, redact
from agent.notifications.settings import SlackService

TRANSIENT_ERRORS = frozenset({"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
                              "request_timeout"})


async def send_slack(service: SlackService, message: Message, *, session: aiohttp.ClientSession) -> None:
    if not message.recipient:
        raise DeliveryFailed("no channel: subscribe with slack-service:CHANNEL", retry=False)
    token = read_secret(env=service.token_env, file=service.token_file, what="token")
    payload: dict[str, Any] = {"channel": message.recipient, "text": message.text}
    if message.slack_attachments:
        payload["attachments"] = message.slack_attachments
    if message.slack_blocks:
        payload["blocks"] = message.slack_blocks
    if service.username:
        payload["username"] = service.username
    if service.icon_emoji:
        payload["icon_emoji"] = service.icon_emoji
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json; charset=utf-8"}
    try:
        async with session.post(f"{service.api_url}/chat.postMessage", json=payload, headers=headers) as response:
            text = await response.text()
            if response.status != 200:
                raise http_failure(response.status, after=response.headers.get("Retry-After"),
                                   detail=redact(text, [token]))
            try:
                answer = await response.json(content_type=None)
            except ValueError as exc:
                raise DeliveryFailed(f"the answer is not JSON: {redact(text[:200], [token])}", retry=True) from exc
    except aiohttp.ClientError as exc:
        raise DeliveryFailed(redact(f"{type(exc).__name__}: {exc}", [token]), retry=True) from exc
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        error = str(answer.get("error", "no error given")) if isinstance(answer, dict) else "not a JSON object"
        raise DeliveryFailed(f"Slack refused the message: {error}", retry=error in TRANSIENT_ERRORS,
                             after=None)
