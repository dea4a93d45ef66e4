"""The services a notification goes out through: Slack, email (SMTP) and plain HTTP webhooks.

    base      Message, DeliveryFailed (retry or not), secrets read at each send, redaction
    slack     chat.postMessage with a bot token
    smtp      email through smtplib in a worker thread
    webhook   any HTTP endpoint
"""

from __future__ import annotations

import aiohttp

from agent.notifications.services.base import DeliveryFailed, Message
from agent.notifications.services.slack import send_slack
from agent.notifications.services.smtp import send_email
from agent.notifications.services.webhook import send_webhook
from agent.notifications.settings import EmailService, Service, SlackService

__all__ = ["DeliveryFailed", "Message", "send"]


async def send(service: Service, message: Message, *, session: aiohttp.ClientSession,
               socket_timeout: float) -> None:
    """Send one message; DeliveryFailed says whether trying again could help. The caller bounds the
    whole attempt; `socket_timeout` bounds the blocking I/O of the SMTP thread, which cannot be cancelled."""
    if isinstance(service, SlackService):
        await send_slack(service, message, session=session)
    elif isinstance(service, EmailService):
        await send_email(service, message, socket_timeout=socket_timeout)
    else:
        await send_webhook(service, message, session=session)
