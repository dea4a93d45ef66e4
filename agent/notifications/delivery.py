"""Getting messages out without ever holding up a reconcile.

    submit(delivery)   never blocks: the delivery becomes a named task, or is dropped (and
                       counted) when MAX_PENDING are already waiting
    each delivery      waits until the snapshot that records its mark is on disk (at most
                       DURABLE_WAIT), renders, then sends with one attempt at a time per
                       destination (a channel sees its messages in order), each attempt
                       bounded by `timeout`; 429, 5xx and network errors are tried again
                       `retry_limit` times with doubling backoff (Retry-After when the
                       server sends one); the final outcome is logged once and counted in
                       gitops_agent_notifications_total{service, trigger, result}
    close(drain)       at shutdown: waits `drain` seconds for what is in flight, then
                       cancels the rest (counted as dropped, one log line)

A backoff sleeps outside the destination's turn, so a receiver that hangs or rate-limits
delays only its own messages, never another service's, and never the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from agent.notifications.expressions import RUNTIME_ERRORS
from agent.notifications.services import DeliveryFailed, Message, send
from agent.notifications.settings import DeliverySettings, Service, ServiceType, TemplateSpec, WebhookService
from agent.notifications.subscriptions import Destination

log = logging.getLogger(__name__)

MAX_PENDING = 1000  # deliveries waiting or in flight; more are dropped, not queued without bound
DURABLE_WAIT = 5.0  # longest wait for the snapshot holding the mark (a failing disk must not hold messages)
MAX_BACKOFF = 60.0
MAX_RETRY_AFTER = 300.0


class DeliveryObserver(Protocol):
    def observe_notification(self, service: str, trigger: str, result: str) -> None: ...


@dataclass(frozen=True)
class Delivery:
    """One template to one destination, for one trigger of one app, rendered from `moment`."""

    app: str
    trigger: str
    key: str  # the oncePer value it fired for
    template: TemplateSpec
    service: Service
    destination: Destination
    moment: Mapping[str, Any] = field(repr=False)  # {"app": ..., "context": ...} as the trigger saw it
    written: int = 0  # the snapshot update that records the mark (0: none to wait for)

    @property
    def id(self) -> str:
        parts = (self.app, self.trigger, self.key, self.template.name, self.service.name, self.destination.recipient)
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def render(delivery: Delivery) -> Message:
    """The message for the delivery's service type; DeliveryFailed (not retried) when a template fails."""
    template, service = delivery.template, delivery.service
    context = {**delivery.moment, "serviceType": service.type.value, "recipient": delivery.destination.recipient}
    try:
        text = template.message.render(context).strip()
        subject = template.email_subject.render(context).strip() if template.email_subject else ""
        attachments = blocks = None
        if service.type is ServiceType.SLACK:
            attachments = json.loads(template.slack_attachments.render(context)) if template.slack_attachments \
                else None
            blocks = json.loads(template.slack_blocks.render(context)) if template.slack_blocks else None
        body = None
        if isinstance(service, WebhookService) and service.body is not None:
            notification = {"trigger": delivery.trigger, "template": template.name, "message": text,
                            "subject": subject, "id": delivery.id}
            body = service.body.render({**context, "notification": notification})
    except RUNTIME_ERRORS as exc:
        raise DeliveryFailed(f"template {template.name}: {type(exc).__name__}: {exc}", retry=False) from exc
    return Message(delivery.id, delivery.app, delivery.trigger, template.name, delivery.destination.recipient,
                   text, subject, attachments, blocks, body)


class Dispatcher:
    def __init__(self, settings: DeliverySettings, *, observer: DeliveryObserver,
                 durable: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.settings = settings
        self._observer = observer
        self._durable = durable
        self._tasks: set[asyncio.Task[None]] = set()
        self._turns: dict[Destination, asyncio.Lock] = {}
        self._session: aiohttp.ClientSession | None = None
        self._closing = False
        self.sent = 0  # for tests and the shutdown line

    def submit(self, delivery: Delivery) -> bool:
        """Start delivering; False (counted as dropped) when stopping or too many are pending."""
        if self._closing or len(self._tasks) >= MAX_PENDING:
            self._observer.observe_notification(delivery.service.name, delivery.trigger, "dropped")
            log.warning("notification dropped: %s", "the agent is stopping" if self._closing else
                        f"{MAX_PENDING} notifications are already waiting", extra=_fields(delivery))
            return False
        task = asyncio.get_running_loop().create_task(
            self._deliver(delivery), name=f"notify:{delivery.app}:{delivery.trigger}:{delivery.destination}")
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return True

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("notification task %s failed", task.get_name(), exc_info=task.exception())

    @property
    def pending(self) -> int:
        return len(self._tasks)

    async def close(self, *, drain: float) -> None:
        """Stop taking deliveries; give those in flight `drain` seconds, then cancel them."""
        self._closing = True
        tasks = list(self._tasks)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=drain)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late)
                log.warning("%d notifications not delivered: the agent is stopping", len(late))
        if self._session is not None:
            await self._session.close()
            self._session = None

    # ------------------------------------------------------------------ one delivery

    async def _deliver(self, delivery: Delivery) -> None:
        try:
            await self._wait_durable(delivery.written)
            message = render(delivery)
            await self._attempts(delivery, message)
        except DeliveryFailed as exc:
            self._observer.observe_notification(delivery.service.name, delivery.trigger, "failed")
            log.error("notification not delivered: %s", exc.message, extra=_fields(delivery))
        except asyncio.CancelledError:
            self._observer.observe_notification(delivery.service.name, delivery.trigger, "dropped")
            raise
        else:
            self.sent += 1
            self._observer.observe_notification(delivery.service.name, delivery.trigger, "sent")
            log.info("notification sent", extra=_fields(delivery))

    async def _wait_durable(self, written: int) -> None:
        if self._durable is None or not written:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(DURABLE_WAIT):
                await self._durable(written)

    async def _attempts(self, delivery: Delivery, message: Message) -> None:
        settings = self.settings
        for attempt in range(settings.retry_limit + 1):
            try:
                async with self._turn(delivery.destination):
                    async with asyncio.timeout(settings.timeout):
                        await send(delivery.service, message, session=self._client(), socket_timeout=settings.timeout)
                return
            except TimeoutError:
                failure = DeliveryFailed(f"no answer within {settings.timeout:g}s", retry=True)
            except DeliveryFailed as exc:
                failure = exc
            if not failure.retry or attempt == settings.retry_limit:
                suffix = f" (after {attempt + 1} attempts)" if failure.retry else ""
                raise DeliveryFailed(failure.message + suffix, retry=False)
            delay = min(failure.after, MAX_RETRY_AFTER) if failure.after is not None else \
                min(settings.retry_backoff * 2 ** attempt, MAX_BACKOFF)
            log.info("notification attempt failed: %s; trying again in %.1fs", failure.message, delay,
                     extra=_fields(delivery))
            await asyncio.sleep(delay)

    @contextlib.asynccontextmanager
    async def _turn(self, destination: Destination) -> Any:
        lock = self._turns.setdefault(destination, asyncio.Lock())
        async with lock:
            yield

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()  # each attempt is bounded by asyncio.timeout
        return self._session


def _fields(delivery: Delivery) -> dict[str, str]:
    return {"app": delivery.app, "trigger": delivery.trigger, "template": delivery.template.name,
            "service": delivery.service.name, "recipient": delivery.destination.recipient}
