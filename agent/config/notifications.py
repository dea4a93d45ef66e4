"""`[notifications]`: services, templates, triggers and subscriptions, compiled at load.

Every `when`, `once_per` and template is compiled in Jinja2's sandbox and evaluated against
a complete sample app here, so a syntax error, a misspelt field or a Slack attachment that
is not JSON is a ConfigError naming the table and key: `gitops-agent validate` and `run`
exit 2, and a reload is refused with the running configuration kept. The built-in catalog
(agent.notifications.catalog) is always there; an entry of the same name replaces it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from agent.config.reader import Table, parse_duration
from agent.notifications import catalog
from agent.notifications.context import sample_contexts
from agent.notifications.expressions import CompileError, Compiler, Expression, Template
from agent.notifications.settings import (
    DeliverySettings,
    EmailSecurity,
    EmailService,
    NotificationSettings,
    Service,
    ServiceType,
    SlackService,
    SubscriptionSpec,
    TemplateSpec,
    TriggerSpec,
    WebhookService,
)
from agent.notifications.subscriptions import parse_destination, parse_selector

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_HEADER = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SAMPLE_NOTIFICATION = {"trigger": "on-sync-failed", "template": "app-sync-failed", "message": "Sync failed.",
                        "subject": "Failed to sync application payment-service-prod."}


class _Checker:
    """Compiles against the sample apps; a failure becomes the ConfigError of one key."""

    def __init__(self, context: Mapping[str, str]) -> None:
        self.compiler = Compiler()
        self.samples = sample_contexts(context)
        # Templates are rendered per service type (`serviceType`): each must work for every type.
        self.rendered = [{**sample, "serviceType": kind.value, "recipient": "sample-recipient"}
                         for sample in self.samples for kind in ServiceType]

    def expression(self, table: Table, key: str, *, required: bool = False) -> Expression | None:
        """The compiled expression; an optional one left out or empty is None."""
        source = table.get(key, str, required=required) if required or key in table.data else ""
        table.used.add(key)
        if not source and not required:
            return None
        try:
            return self.compiler.expression(source, samples=self.samples)
        except CompileError as exc:
            raise table.error(key, str(exc)) from exc

    def template(self, table: Table, key: str, *, required: bool = False, json_array: bool = False,
                 extra: Mapping[str, Any] | None = None) -> Template | None:
        """The compiled template; an optional one left out or empty is None (the default applies)."""
        source = table.get(key, str, required=required) if required or key in table.data else ""
        table.used.add(key)
        if not source and not required:
            return None
        return self.compile(table, key, source, json_array=json_array, extra=extra)

    def compile(self, table: Table, key: str, source: str, *, json_array: bool = False,
                extra: Mapping[str, Any] | None = None) -> Template:
        samples = [{**sample, **(extra or {})} for sample in self.rendered]
        try:
            template = self.compiler.template(source, samples=samples)
        except CompileError as exc:
            raise table.error(key, str(exc)) from exc
        if json_array:
            for sample in samples:
                try:
                    value = json.loads(template.render(sample))
                except ValueError as exc:
                    raise table.error(key, f"does not render to JSON for a sample application: {exc}") from exc
                if not isinstance(value, list):
                    raise table.error(key, "must render to a JSON array")
        return template


def parse_notifications(table: Table) -> NotificationSettings:
    context = _string_map(table, "context")
    delivery = _delivery(table)
    checker = _Checker(dict(context))
    services = _services(table.sub_array("services"), checker)
    templates = _templates(table.sub_array("templates"), checker)
    triggers = _triggers(table.sub_array("triggers"), checker, templates)
    subscriptions = tuple(_subscription(t, services, triggers) for t in table.sub_array("subscriptions"))
    table.finish()
    return NotificationSettings(services=services, templates=templates, triggers=triggers,
                                subscriptions=subscriptions, context=context, delivery=delivery)


def _delivery(table: Table) -> DeliverySettings:
    defaults = DeliverySettings()
    delivery = DeliverySettings(
        timeout=table.convert("timeout", defaults.timeout, parse_duration),
        retry_limit=table.get("retry_limit", int, defaults.retry_limit),
        retry_backoff=table.convert("retry_backoff", defaults.retry_backoff, parse_duration),
    )
    if delivery.timeout <= 0:
        raise table.error("timeout", "must be greater than zero")
    if delivery.retry_limit < 0:
        raise table.error("retry_limit", f"must not be negative, not {delivery.retry_limit}")
    return delivery


# ---------------------------------------------------------------- services


def _services(tables: list[Table], checker: _Checker) -> tuple[Service, ...]:
    services: list[Service] = []
    for table in tables:
        name = _name(table)
        kind = table.get("type", str, required=True)
        if kind not in set(ServiceType):
            raise table.error("type", f"unknown service type {kind!r} (known: {', '.join(ServiceType)})")
        if any(existing.name == name for existing in services):
            raise table.error("name", f"{name!r} is used by another [[notifications.services]] entry")
        service: Service
        if kind == ServiceType.SLACK:
            service = _slack(table, name)
        elif kind == ServiceType.EMAIL:
            service = _email(table, name)
        else:
            service = _webhook(table, name, checker)
        table.finish()
        services.append(service)
    return tuple(services)


def _slack(table: Table, name: str) -> SlackService:
    service = SlackService(
        name=name, token_env=table.get("token_env", str, ""), token_file=table.path("token_file"),
        api_url=table.get("api_url", str, SlackService.api_url).rstrip("/"),
        username=table.get("username", str, ""), icon_emoji=table.get("icon_emoji", str, ""),
    )
    _one_secret(table, "token", service.token_env, service.token_file, required=True)
    _http_url(table, "api_url", service.api_url)
    return service


def _email(table: Table, name: str) -> EmailService:
    security = table.get("tls", str, EmailSecurity.STARTTLS.value)
    if security not in set(EmailSecurity):
        raise table.error("tls", f"must be one of {', '.join(EmailSecurity)}, not {security!r}")
    service = EmailService(
        name=name, host=table.get("host", str, required=True), sender=table.get("from", str, required=True),
        port=table.positive("port", 465 if security == EmailSecurity.TLS else 587),
        username=table.get("username", str, ""), password_env=table.get("password_env", str, ""),
        password_file=table.path("password_file"), security=EmailSecurity(security), ca_file=table.path("ca_file"),
    )
    has_password = _one_secret(table, "password", service.password_env, service.password_file, required=False)
    if has_password and not service.username:
        raise table.error("username", "is required with a password")
    if has_password and service.security is EmailSecurity.NONE:
        raise table.error("tls", "\"none\" would send the password unencrypted; use \"starttls\" or \"tls\"")
    if "@" not in service.sender:
        raise table.error("from", f"{service.sender!r} is not an email address")
    return service


def _webhook(table: Table, name: str, checker: _Checker) -> WebhookService:
    method = table.get("method", str, "POST").upper()
    if method not in _METHODS:
        raise table.error("method", f"must be one of {', '.join(_METHODS)}, not {method!r}")
    service = WebhookService(
        name=name, url=table.get("url", str, ""), url_env=table.get("url_env", str, ""),
        url_file=table.path("url_file"), method=method, headers=_headers(table, "headers"),
        headers_env=_headers(table, "headers_env"),
        body=checker.template(table, "body", extra={"notification": _SAMPLE_NOTIFICATION}),
    )
    given = [key for key in ("url", "url_env", "url_file") if getattr(service, key)]
    if len(given) != 1:
        raise table.error("url", "give exactly one of url, url_env and url_file")
    if service.url:
        _http_url(table, "url", service.url)
    return service


def _one_secret(table: Table, what: str, env: str, file: str, *, required: bool) -> bool:
    if env and file:
        raise table.error(f"{what}_file", f"give {what}_env or {what}_file, not both")
    if required and not (env or file):
        raise table.error(f"{what}_env", f"is required (or {what}_file): the {what} is never written in the file")
    return bool(env or file)


def _http_url(table: Table, key: str, url: str) -> None:
    if not re.match(r"^https?://[^/\s]+", url):
        raise table.error(key, "must be an http:// or https:// URL")


def _headers(table: Table, key: str) -> tuple[tuple[str, str], ...]:
    headers = _string_map(table, key)
    for header, _ in headers:
        if not _HEADER.match(header):
            raise table.error(f"{key}.{header}", "is not a valid HTTP header name")
    return headers


# ---------------------------------------------------------------- templates and triggers


def _templates(tables: list[Table], checker: _Checker) -> dict[str, TemplateSpec]:
    trusted = checker.compiler.trusted_template
    templates = {spec.name: TemplateSpec(
        spec.name, trusted(spec.message), trusted(spec.email_subject),
        trusted(spec.slack_attachments) if spec.slack_attachments else None) for spec in catalog.TEMPLATES}
    seen: set[str] = set()
    for table in tables:
        name = _name(table)
        if name in seen:
            raise table.error("name", f"{name!r} is used by another [[notifications.templates]] entry")
        seen.add(name)
        message = checker.template(table, "message", required=True)
        assert message is not None
        templates[name] = TemplateSpec(
            name, message, email_subject=checker.template(table, "email_subject"),
            slack_attachments=checker.template(table, "slack_attachments", json_array=True),
            slack_blocks=checker.template(table, "slack_blocks", json_array=True),
        )
        table.finish()
    return templates


def _triggers(tables: list[Table], checker: _Checker, templates: Mapping[str, TemplateSpec]) -> tuple[TriggerSpec, ...]:
    compiler, samples = checker.compiler, checker.samples
    triggers = {spec.name: TriggerSpec(
        spec.name, compiler.expression(spec.when, samples=samples), spec.send,
        compiler.expression(spec.once_per, samples=samples) if spec.once_per else None, spec.description)
        for spec in catalog.TRIGGERS}
    seen: set[str] = set()
    for table in tables:
        name = _name(table)
        if name in seen:
            raise table.error("name", f"{name!r} is used by another [[notifications.triggers]] entry")
        seen.add(name)
        send = table.strings("send", required=True)
        if not send:
            raise table.error("send", "must name at least one template")
        for index, template in enumerate(send):
            if template not in templates:
                raise table.error(f"send[{index}]", f"no template {template!r} (known: {', '.join(sorted(templates))})")
        when = checker.expression(table, "when", required=True)
        assert when is not None
        triggers[name] = TriggerSpec(name, when, tuple(send), checker.expression(table, "once_per"),
                                     table.get("description", str, ""))
        table.finish()
    return tuple(triggers[name] for name in sorted(triggers))


def _subscription(table: Table, services: tuple[Service, ...], triggers: tuple[TriggerSpec, ...]) -> SubscriptionSpec:
    recipients = table.strings("recipients", required=True)
    if not recipients:
        raise table.error("recipients", "must name at least one SERVICE:RECIPIENT")
    destinations = []
    for index, text in enumerate(recipients):
        try:
            destination = parse_destination(text)
        except ValueError as exc:
            raise table.error(f"recipients[{index}]", str(exc)) from exc
        if not any(service.name == destination.service for service in services):
            known = ", ".join(service.name for service in services) or "none configured"
            raise table.error(f"recipients[{index}]", f"no service {destination.service!r} in "
                                                      f"[[notifications.services]] (known: {known})")
        destinations.append(destination)
    names = table.strings("triggers", required=True)
    if not names:
        raise table.error("triggers", "must name at least one trigger")
    known_triggers = {trigger.name for trigger in triggers}
    for index, name in enumerate(names):
        if name not in known_triggers:
            raise table.error(f"triggers[{index}]", f"no trigger {name!r} (known: {', '.join(sorted(known_triggers))})")
    selector = None
    if text := table.get("selector", str, ""):
        try:
            selector = parse_selector(text)
        except ValueError as exc:
            raise table.error("selector", str(exc)) from exc
    spec = SubscriptionSpec(tuple(dict.fromkeys(destinations)), tuple(dict.fromkeys(names)),
                            tuple(table.strings("applications")), selector)
    table.finish()
    return spec


def _name(table: Table) -> str:
    name = table.get("name", str, required=True)
    if not _NAME.match(name):
        raise table.error("name", f"{name!r} must be letters, digits, '-', '_' or '.' (at most 63)")
    return name


def _string_map(table: Table, key: str) -> tuple[tuple[str, str], ...]:
    value = table.get(key, dict, {})
    for name, item in value.items():
        if not isinstance(item, str):
            raise table.error(f"{key}.{name}", f"must be a string, not {item!r}")
    return tuple(sorted(value.items()))
