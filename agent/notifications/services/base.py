"""What every service shares: the rendered message, the failure it raises, and its secrets.

    DeliveryFailed(retry=True)    429, 5xx, a network error or a timeout: tried again (after
                                  `after` seconds when the server said so: Retry-After)
    DeliveryFailed(retry=False)   anything else (401, a channel that does not exist, a missing
                                  token): retrying cannot help; logged once and counted

Secrets (tokens, passwords, URLs that carry a token) are read from their variable or file
at each send and are never part of a message: `redact` removes them from any text an
exception carries before it is logged.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Message:
    """One notification for one destination, rendered for its service type."""

    id: str  # stable for (app, trigger, oncePer value, template, destination): receivers may dedupe on it
    app: str
    trigger: str
    template: str
    recipient: str
    text: str
    subject: str = ""
    slack_attachments: list[Any] | None = None
    slack_blocks: list[Any] | None = None
    body: str | None = None  # a webhook's rendered body template


class DeliveryFailed(Exception):
    def __init__(self, message: str, *, retry: bool, after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry = retry
        self.after = after  # seconds the server asked to wait (Retry-After)


def read_secret(*, env: str, file: str, what: str) -> str:
    """The value of `$env` or the content of `file` (stripped); DeliveryFailed naming the variable or
    file, never the value, when there is none."""
    if env:
        value = os.environ.get(env, "")
        if not value:
            raise DeliveryFailed(f"the {what} variable {env} is not set", retry=False)
        return value
    try:
        with open(file, encoding="utf-8") as handle:
            value = handle.read().strip()
    except OSError as exc:
        raise DeliveryFailed(f"cannot read the {what} file {file}: {exc.strerror or exc}", retry=False) from exc
    if not value:
        raise DeliveryFailed(f"the {what} file {file} is empty", retry=False)
    return value


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "<redacted>")
    return text


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header in its delay form (what Slack sends); None otherwise."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def http_failure(status: int, *, after: str | None, detail: str = "") -> DeliveryFailed:
    """The failure for an HTTP status that is not a success: 429 and 5xx are tried again."""
    text = f"HTTP {status}" + (f": {detail[:200]}" if detail else "")
    return DeliveryFailed(text, retry=status == 429 or status >= 500, after=retry_after(after))
