"""`[notifications]`: parsed strictly, compiled at load, errors naming file, table and key."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from agent.config import load_settings, parse_settings
from agent.config.diff import diff_settings
from agent.errors import ConfigError
from agent.notifications import catalog
from agent.notifications.context import sample_contexts
from agent.notifications.expressions import Compiler
from agent.notifications.settings import EmailSecurity, EmailService, SlackService, WebhookService
from agent.notifications.subscriptions import Destination

DOCS = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"

SERVICES = """
[[notifications.services]]
name = "slack"
type = "slack"
token_env = "SLACK_BOT_TOKEN"

[[notifications.services]]
name = "email"
type = "email"
host = "smtp.example.com"
username = "gitops"
password_env = "SMTP_PASSWORD"
from = "gitops@example.com"

[[notifications.services]]
name = "oncall"
type = "webhook"
url = "https://hooks.example.com/x"
"""


def parse(text: str) -> object:
    return parse_settings(tomllib.loads(text), file="agent.toml")


def refused(text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(text)
    return str(caught.value)


def test_the_issue_example_parses_into_services_triggers_and_subscriptions() -> None:
    settings = parse_settings(tomllib.loads(SERVICES + """
[[notifications.templates]]
name = "app-sync-status"
message = "Application {{ app.metadata.name }} sync {{ app.status.operationState.phase }}."
email_subject = "{{ app.metadata.name }}: {{ app.status.operationState.phase }}"

[[notifications.triggers]]
name = "on-prod-failed"
when = "app.status.operationState.phase in ['Error', 'Failed'] and app.spec.destination.namespace == 'payments'"
send = ["app-sync-status"]

[[notifications.subscriptions]]
recipients = ["slack:payments-deployments", "email:oncall@example.com"]
triggers = ["on-sync-succeeded", "on-sync-failed"]
applications = ["*-prod"]
"""))
    notifications = settings.notifications
    slack, mail, hook = notifications.services
    assert isinstance(slack, SlackService) and slack.api_url == "https://slack.com/api"
    assert isinstance(mail, EmailService) and (mail.port, mail.security) == (587, EmailSecurity.STARTTLS)
    assert isinstance(hook, WebhookService) and hook.method == "POST"
    names = {trigger.name for trigger in notifications.triggers}
    assert names == {t.name for t in catalog.TRIGGERS} | {"on-prod-failed"}
    assert set(notifications.templates) == {t.name for t in catalog.TEMPLATES} | {"app-sync-status"}
    (subscription,) = notifications.subscriptions
    assert subscription.recipients == (Destination("slack", "payments-deployments"),
                                       Destination("email", "oncall@example.com"))
    assert subscription.applications == ("*-prod",)


def test_without_a_notifications_table_the_catalog_is_there() -> None:
    settings = parse_settings({})
    assert [t.name for t in settings.notifications.triggers] == sorted(t.name for t in catalog.TRIGGERS)
    assert settings.notifications.services == ()


def test_a_template_with_a_syntax_error_is_refused_naming_table_and_key() -> None:
    problem = refused(SERVICES + """
[[notifications.templates]]
name = "broken"
message = "Application {{ app.metadata.name } synced"
""")
    assert problem.startswith("agent.toml: notifications.templates[0].message: line 1: ")


def test_a_misspelt_field_is_refused_at_load_not_at_send_time() -> None:
    problem = refused(SERVICES + """
[[notifications.triggers]]
name = "on-typo"
when = "app.status.heath.status == 'Degraded'"
send = ["app-health-degraded"]
""")
    assert "notifications.triggers[0].when" in problem and "heath" in problem


def test_an_expression_in_another_language_is_refused() -> None:
    problem = refused(SERVICES + """
[[notifications.triggers]]
name = "on-go-style"
when = "app.status.health.status == 'Degraded' && true"
send = ["app-health-degraded"]
""")
    assert "notifications.triggers[0].when: " in problem and "is not a valid expression" in problem


def test_the_seed_expression_and_nil_are_valid_as_written() -> None:
    settings = parse(SERVICES + """
[[notifications.triggers]]
name = "on-sync-succeeded"
when = "app.status.operationState != nil and app.status.operationState.phase in ['Succeeded']"
send = ["app-sync-succeeded"]
""")
    trigger = next(t for t in settings.notifications.triggers if t.name == "on-sync-succeeded")  # type: ignore[attr-defined]
    assert trigger.once_per is None  # the entry replaced the catalog's


def test_slack_attachments_must_render_to_json() -> None:
    problem = refused(SERVICES + """
[[notifications.templates]]
name = "odd"
message = "x"
slack_attachments = "[{\\"title\\": {{ app.metadata.name }}}]"
""")
    assert "notifications.templates[0].slack_attachments: does not render to JSON" in problem


def test_unknown_services_triggers_templates_and_keys_are_refused() -> None:
    assert "recipients[0]: no service 'teams'" in refused(SERVICES + """
[[notifications.subscriptions]]
recipients = ["teams:payments"]
triggers = ["on-sync-failed"]
""")
    assert "triggers[0]: no trigger 'on-sync-faild'" in refused(SERVICES + """
[[notifications.subscriptions]]
recipients = ["slack:payments"]
triggers = ["on-sync-faild"]
""")
    assert "send[0]: no template 'nope'" in refused(SERVICES + """
[[notifications.triggers]]
name = "t"
when = "true"
send = ["nope"]
""")
    assert "notifications.services[0].channel: unknown key" in refused("""
[[notifications.services]]
name = "slack"
type = "slack"
token_env = "T"
channel = "x"
""")


def test_secrets_are_named_by_variable_or_file_never_written_in_the_file() -> None:
    assert "services[0].token_env: is required" in refused("""
[[notifications.services]]
name = "slack"
type = "slack"
""")
    assert "services[0].token_file: give token_env or token_file, not both" in refused("""
[[notifications.services]]
name = "slack"
type = "slack"
token_env = "A"
token_file = "/b"
""")
    assert "services[0].token: unknown key" in refused("""
[[notifications.services]]
name = "slack"
type = "slack"
token_env = "A"
token = "xoxb-literal"
""")
    assert "would send the password unencrypted" in refused("""
[[notifications.services]]
name = "email"
type = "email"
host = "smtp.example.com"
username = "u"
password_env = "P"
from = "a@example.com"
tls = "none"
""")


def test_selectors_are_checked() -> None:
    assert "subscriptions[0].selector: 'env in (prod' " in refused(SERVICES + """
[[notifications.subscriptions]]
recipients = ["slack:payments"]
triggers = ["on-sync-failed"]
selector = "env in (prod"
""")


def test_a_changed_template_is_a_notifications_change_on_reload() -> None:
    base = SERVICES + """
[[notifications.templates]]
name = "mine"
message = "{{ app.metadata.name }} one"
"""
    first, same = parse(base), parse(base)
    changed = parse(base.replace(" one", " two"))
    assert not diff_settings(first, same).notifications  # type: ignore[arg-type]
    assert diff_settings(first, changed).notifications  # type: ignore[arg-type]


def test_every_catalog_template_renders_for_every_service_type() -> None:
    settings = parse(SERVICES)
    for template in settings.notifications.templates.values():  # type: ignore[attr-defined]
        for sample in sample_contexts({"argocdUrl": "https://gitops.example.com"}):
            for kind in ("slack", "email", "webhook"):
                text = template.message.render({**sample, "serviceType": kind, "recipient": "r"})
                assert "payment-service-prod" in text
                assert (":" in text.split(" ", 1)[0]) == (kind == "slack" and template.name in (
                    "app-deployed", "app-health-degraded", "app-sync-failed", "app-sync-status-unknown",
                    "app-sync-succeeded")), (template.name, kind, text)


def test_the_catalog_passes_the_checks_a_configured_template_gets() -> None:
    compiler = Compiler()
    samples = [{**sample, "serviceType": kind, "recipient": "r"}
               for sample in sample_contexts({}) for kind in ("slack", "email", "webhook")]
    for spec in catalog.TEMPLATES:
        for source in (spec.message, spec.email_subject):
            compiler.template(source, samples=samples)
        attachments = compiler.template(spec.slack_attachments or "[]", samples=samples)
        for sample in samples:
            assert isinstance(json.loads(attachments.render(sample)), list)
    for trigger in catalog.TRIGGERS:
        compiler.expression(trigger.when, samples=sample_contexts({}))
        if trigger.once_per:
            compiler.expression(trigger.once_per, samples=sample_contexts({}))


def test_every_toml_example_in_the_notifications_docs_is_valid(tmp_path: Path) -> None:
    blocks = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) >= 3
    for index, block in enumerate(blocks):
        path = tmp_path / f"example-{index}.toml"
        path.write_text(block)
        load_settings(path)  # raises ConfigError naming the block's file and key
