"""Delivery against real receivers on loopback: retries, Retry-After, timeouts, refusals, secrets,
durability, shutdown."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path

import pytest

from agent.config import parse_settings
from agent.metrics import Metrics
from agent.notifications import delivery as delivery_module
from agent.notifications.context import sample_contexts
from agent.notifications.delivery import Delivery, Dispatcher
from agent.notifications.settings import (
    DeliverySettings,
    EmailSecurity,
    EmailService,
    Service,
    SlackService,
    WebhookService,
)
from agent.notifications.subscriptions import Destination
from agent.state import StateStore
from tests.integration.helpers import eventually
from tests.support.metrics import sample_total
from tests.support.receivers import TOKEN, Answer, SlackReceiver, SmtpReceiver, WebhookReceiver

TEMPLATES = parse_settings({"notifications": {"context": {"argocdUrl": "https://gitops.example.com"}}}) \
    .notifications.templates
FAST = DeliverySettings(timeout=2.0, retry_limit=3, retry_backoff=0.05)


def delivery(service: Service, recipient: str, *, template: str = "app-sync-failed", written: int = 0) -> Delivery:
    moment = {**sample_contexts({})[0], "context": {"argocdUrl": "https://gitops.example.com"}}
    return Delivery("payment-service-prod", "on-sync-failed", "0123abc", TEMPLATES[template], service,
                    Destination(service.name, recipient), moment, written)


def slack_service(receiver: SlackReceiver) -> SlackService:
    return SlackService("slack", token_env="TEST_SLACK_TOKEN", api_url=receiver.api_url)


def counted(metrics: Metrics, result: str) -> float:
    return sample_total(metrics, "gitops_agent_notifications_total", result=result)


async def delivered(dispatcher: Dispatcher) -> None:
    await eventually(lambda: dispatcher.pending == 0, within=15, what="deliveries to end")


@pytest.fixture(autouse=True)
def slack_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SLACK_TOKEN", TOKEN)


async def test_a_receiver_answering_500_then_200_gets_the_message_once(slack: SlackReceiver) -> None:
    metrics = Metrics()
    dispatcher = Dispatcher(FAST, observer=metrics)
    slack.fail_next.append(Answer(500))
    assert dispatcher.submit(delivery(slack_service(slack), "payments-deployments"))
    await delivered(dispatcher)
    await dispatcher.close(drain=1)
    assert len(slack.requests) == 2
    (message,) = slack.messages
    assert message["channel"] == "payments-deployments"
    assert message["text"].startswith(":exclamation: The sync operation of application payment-service-prod has failed")
    assert message["attachments"][0]["title_link"] == "https://gitops.example.com/applications/payment-service-prod"
    assert (counted(metrics, "sent"), counted(metrics, "failed")) == (1, 0)


async def test_slack_retry_after_is_honoured(slack: SlackReceiver) -> None:
    dispatcher = Dispatcher(FAST, observer=Metrics())
    slack.fail_next.append(Answer(429, {"ok": False, "error": "ratelimited"}, {"Retry-After": "0.4"}))
    dispatcher.submit(delivery(slack_service(slack), "payments"))
    await delivered(dispatcher)
    await dispatcher.close(drain=1)
    (first, _, _), (second, _, _) = slack.requests
    assert second - first >= 0.4  # not the 0.05s backoff
    assert len(slack.messages) == 1


async def test_a_refusal_is_not_retried_and_is_logged_once_without_the_token(
        slack: SlackReceiver, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    dispatcher = Dispatcher(FAST, observer=metrics)
    slack.fail_next.append(Answer(200, {"ok": False, "error": "channel_not_found"}))
    with caplog.at_level(logging.INFO, logger="agent.notifications"):
        dispatcher.submit(delivery(slack_service(slack), "no-such-channel"))
        await delivered(dispatcher)
    await dispatcher.close(drain=1)
    assert len(slack.requests) == 1
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["notification not delivered: Slack refused the message: "
                                                "channel_not_found"]
    assert errors[0].__dict__["service"] == "slack" and errors[0].__dict__["recipient"] == "no-such-channel"
    assert TOKEN not in caplog.text
    assert counted(metrics, "failed") == 1


async def test_a_receiver_that_hangs_is_given_up_after_the_retries(slack: SlackReceiver) -> None:
    metrics = Metrics()
    dispatcher = Dispatcher(DeliverySettings(timeout=0.2, retry_limit=1, retry_backoff=0.05), observer=metrics)
    slack.hang = True
    dispatcher.submit(delivery(slack_service(slack), "payments"))
    await delivered(dispatcher)
    await dispatcher.close(drain=1)
    assert len(slack.requests) == 2
    assert counted(metrics, "failed") == 1


async def test_email_goes_through_a_real_smtp_server(smtp: SmtpReceiver) -> None:
    service = EmailService("email", host="127.0.0.1", port=smtp.port, sender="gitops@example.com",
                           security=EmailSecurity.NONE)
    dispatcher = Dispatcher(FAST, observer=Metrics())
    dispatcher.submit(delivery(service, "oncall@example.com"))
    await delivered(dispatcher)
    await dispatcher.close(drain=1)
    (mail,) = smtp.mails
    assert mail["Subject"] == "Failed to sync application payment-service-prod."
    assert mail["From"] == "gitops@example.com" and mail["To"] == "oncall@example.com"
    body = mail.get_content()
    assert body.startswith("The sync operation of application payment-service-prod has failed")  # no Slack emoji
    assert mail["Message-ID"].endswith("@gitops-agent>")


async def test_a_webhook_gets_json_with_a_stable_id_and_no_secret_leaks(
        webhook_receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_url = webhook_receiver.url + "?token=s3cr3t-in-the-url"
    monkeypatch.setenv("HOOK_URL", secret_url)
    monkeypatch.setenv("HOOK_TOKEN", "Bearer s3cr3t-header")
    service = WebhookService("oncall", url_env="HOOK_URL", headers_env=(("Authorization", "HOOK_TOKEN"),))
    metrics = Metrics()
    dispatcher = Dispatcher(FAST, observer=metrics)
    one = delivery(service, "")
    dispatcher.submit(one)
    webhook_receiver.fail_next.append(Answer(404, {"error": "s3cr3t-in-the-url not found"}))
    with caplog.at_level(logging.INFO, logger="agent.notifications"):
        dispatcher.submit(replace(one, trigger="on-sync-running"))
        await delivered(dispatcher)
    await dispatcher.close(drain=1)
    (body,) = webhook_receiver.bodies
    assert body["app"] == "payment-service-prod" and body["trigger"] in ("on-sync-failed", "on-sync-running")
    (headers,) = webhook_receiver.headers
    assert headers["X-Notification-Id"] == body["id"]
    assert headers["Authorization"] == "Bearer s3cr3t-header"
    assert "s3cr3t" not in caplog.text
    assert (counted(metrics, "sent"), counted(metrics, "failed")) == (1, 1)


async def test_a_message_waits_until_the_snapshot_holding_its_mark_is_written(
        slack: SlackReceiver, tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.update("payment-service-prod", {"marks": "on-sync-failed"})
    dispatcher = Dispatcher(FAST, observer=Metrics(), durable=store.until_written)
    dispatcher.submit(delivery(slack_service(slack), "payments", written=store.updates))
    await asyncio.sleep(0.3)
    assert slack.messages == []  # the mark is not on disk yet
    assert await store.write()
    await delivered(dispatcher)
    await dispatcher.close(drain=1)
    assert len(slack.messages) == 1


async def test_closing_drains_briefly_then_drops_what_is_left(
        slack: SlackReceiver, caplog: pytest.LogCaptureFixture) -> None:
    metrics = Metrics()
    dispatcher = Dispatcher(FAST, observer=metrics)
    slack.hang = True
    dispatcher.submit(delivery(slack_service(slack), "payments"))
    await eventually(lambda: slack.requests, what="the request to hang")
    with caplog.at_level(logging.INFO, logger="agent.notifications"):
        await dispatcher.close(drain=0.1)
    assert counted(metrics, "dropped") == 1
    assert "1 notifications not delivered: the agent is stopping" in caplog.text
    assert not dispatcher.submit(delivery(slack_service(slack), "payments"))  # closed: dropped, counted
    assert counted(metrics, "dropped") == 2


async def test_too_many_waiting_are_dropped_not_queued_without_bound(
        slack: SlackReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(delivery_module, "MAX_PENDING", 2)
    metrics = Metrics()
    dispatcher = Dispatcher(FAST, observer=metrics)
    slack.hang = True
    accepted = [dispatcher.submit(delivery(slack_service(slack), f"channel-{n}")) for n in range(3)]
    assert accepted == [True, True, False]
    assert counted(metrics, "dropped") == 1
    await dispatcher.close(drain=0)
