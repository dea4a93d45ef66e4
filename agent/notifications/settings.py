"""`[notifications]` as frozen values, with templates and conditions already compiled.

agent.config reads the TOML into these (agent/config/notifications.py); everything else
reads them. Secrets are never held: a service names the variable or file its token or
password is read from at each send, so a rotated secret is used without a restart.
Compiled parts compare by their source, so a reload sees what changed.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.notifications.expressions import Expression, Template
from agent.notifications.subscriptions import Destination, Selector


class ServiceType(enum.StrEnum):
    SLACK = "slack"
    EMAIL = "email"
    WEBHOOK = "webhook"


class EmailSecurity(enum.StrEnum):
    STARTTLS = "starttls"  # plain connection upgraded with STARTTLS before anything is sent (port 587)
    TLS = "tls"  # TLS from the first byte (port 465)
    NONE = "none"  # no TLS at all: only for a relay on loopback; credentials are then refused


@dataclass(frozen=True)
class SlackService:
    """Slack's `chat.postMessage` with a bot token; the recipient is the channel."""

    name: str
    token_env: str = ""
    token_file: str = ""
    api_url: str = "https://slack.com/api"
    username: str = ""
    icon_emoji: str = ""
    type: ServiceType = ServiceType.SLACK


@dataclass(frozen=True)
class EmailService:
    """SMTP; the recipient is the address."""

    name: str
    host: str
    sender: str  # `from` in TOML
    port: int = 587
    username: str = ""
    password_env: str = ""
    password_file: str = ""
    security: EmailSecurity = EmailSecurity.STARTTLS
    ca_file: str = ""
    type: ServiceType = ServiceType.EMAIL


@dataclass(frozen=True)
class WebhookService:
    """Any HTTP endpoint. The URL may hold a secret (Slack's incoming webhooks do), so it can come
    from a variable or file, and it is never logged: messages name the service only."""

    name: str
    url: str = ""
    url_env: str = ""
    url_file: str = ""
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    headers_env: tuple[tuple[str, str], ...] = ()  # header → variable holding its value (a token)
    body: Template | None = None  # default: a JSON object with app, trigger, message and subject
    type: ServiceType = ServiceType.WEBHOOK


Service = SlackService | EmailService | WebhookService


@dataclass(frozen=True)
class TemplateSpec:
    """Argo CD's `template.<name>`: a message and what each service type adds to it."""

    name: str
    message: Template
    email_subject: Template | None = None
    slack_attachments: Template | None = None  # renders to JSON: Slack's `attachments`
    slack_blocks: Template | None = None  # renders to JSON: Slack's `blocks`


@dataclass(frozen=True)
class TriggerSpec:
    """Argo CD's `trigger.<name>` (one condition): when it holds, send these templates."""

    name: str
    when: Expression
    send: tuple[str, ...]
    once_per: Expression | None = None
    description: str = ""


@dataclass(frozen=True)
class SubscriptionSpec:
    """Who hears of which triggers, for which apps (globs on the name, and a label selector)."""

    recipients: tuple[Destination, ...]
    triggers: tuple[str, ...]
    applications: tuple[str, ...] = ()  # empty: every app
    selector: Selector | None = None


@dataclass(frozen=True)
class DeliverySettings:
    timeout: float = 10.0  # one attempt, connection included
    retry_limit: int = 4  # attempts after the first, on 429, 5xx and network errors
    retry_backoff: float = 1.0  # before the first retry; doubles each time, at most MAX_BACKOFF


@dataclass(frozen=True)
class NotificationSettings:
    """Empty by default (nothing evaluated); a configuration file always has the catalog."""

    services: tuple[Service, ...] = ()
    templates: Mapping[str, TemplateSpec] = field(default_factory=dict)
    triggers: tuple[TriggerSpec, ...] = ()
    subscriptions: tuple[SubscriptionSpec, ...] = ()
    context: tuple[tuple[str, str], ...] = ()
    delivery: DeliverySettings = DeliverySettings()

    def service(self, name: str) -> Service | None:
        return next((service for service in self.services if service.name == name), None)
