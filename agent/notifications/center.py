"""Where stored states meet the delivery: decide on each stored state, deliver after it is kept.

The AppTable (the single writer of app states) calls, for every state it stores:

    decide(app, previous, current)   the marks to store with `current` and the deliveries they
                                     stand for (None: nothing a trigger reads has changed)
    submit(pending, written=N)       once the marks are stored and queued for the snapshot as
                                     update N: the deliveries go out after that update is on disk

Deciding is synchronous and pure apart from the problem log (agent.notifications.triggers);
a reconcile never waits for a message. Deliveries go out only while `sending` (this replica
leads): a follower keeps no marks of its own making worth sending from.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace

from agent.model import AppState
from agent.notifications.context import AppDefinition
from agent.notifications.delivery import Delivery, DeliveryObserver, Dispatcher
from agent.notifications.settings import NotificationSettings
from agent.notifications.subscriptions import destinations
from agent.notifications.triggers import Decision, Moment, decide, moments

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pending:
    marks: dict[str, str]
    deliveries: tuple[Delivery, ...] = ()


class Notifications:
    def __init__(self, settings: NotificationSettings, *, observer: DeliveryObserver,
                 durable: Callable[[int], Awaitable[None]] | None = None) -> None:
        self.settings = settings
        self.dispatcher = Dispatcher(settings.delivery, observer=observer, durable=durable)
        self.sending = False
        self._generation = 0  # bumped by every reload: conditions may read differently
        self._seen: dict[str, tuple[AppDefinition, int]] = {}  # app → what it was last evaluated with
        self._reported: set[tuple[str, str]] = set()

    def reconfigure(self, settings: NotificationSettings) -> None:
        """A reload: new services, templates, triggers, subscriptions. Deliveries in flight finish as
        they started; marks of triggers no longer configured are dropped at the app's next decision."""
        self.settings = settings
        self.dispatcher.settings = settings.delivery
        self._generation += 1
        self._reported.clear()

    def forget(self, app: str) -> None:
        self._seen.pop(app, None)

    async def close(self, *, drain: float) -> None:
        await self.dispatcher.close(drain=drain)

    # ------------------------------------------------------------------ deciding

    def decide(self, app: AppDefinition, previous: AppState, current: AppState, *,
               deleted_at: float | None = None) -> Pending | None:
        settings = self.settings
        if not settings.triggers:
            return None
        if deleted_at is None and self._quiet(app, previous, current):
            return None
        self._seen[app.name] = (app, self._generation)
        seen = moments(app, previous, current, context=dict(settings.context), deleted_at=deleted_at)
        decision = decide(settings.triggers, seen, previous.notified)
        for problem in decision.problems:
            self._report(app.name, f"notification condition failed: {problem}")
        return Pending(decision.marks, tuple(self._deliveries(app, decision, seen)))

    def submit(self, pending: Pending, *, written: int) -> None:
        if not self.sending:
            return
        for delivery in pending.deliveries:
            self.dispatcher.submit(replace(delivery, written=written))

    def _quiet(self, app: AppDefinition, previous: AppState, current: AppState) -> bool:
        """Nothing a condition reads has changed (a poll of an unchanged app, an inventory rebuilt):
        the decision would be the same, so it is not made again."""
        if previous.notified is None or self._seen.get(app.name) != (app, self._generation):
            return False
        before, after = previous.status, current.status
        return (before.reconciled_at is None) == (after.reconciled_at is None) \
            and replace(before, reconciled_at=None) == replace(after, reconciled_at=None) \
            and previous.operation == current.operation and previous.history[:1] == current.history[:1]

    def _deliveries(self, app: AppDefinition, decision: Decision, seen: Sequence[Moment]) -> Iterator[Delivery]:
        settings = self.settings
        triggers = {trigger.name: trigger for trigger in settings.triggers}
        labels, annotations = dict(app.labels), dict(app.annotations)
        for fired in decision.fired:
            trigger = triggers[fired.trigger]
            for destination in destinations(settings.subscriptions, trigger=trigger.name, name=app.name,
                                            labels=labels, annotations=annotations):
                service = settings.service(destination.service)
                if service is None:  # only an annotation can name one: the configuration is checked
                    self._report(app.name, f"notification subscription names no configured service "
                                           f"{destination.service!r} (trigger {trigger.name})")
                    continue
                for name in trigger.send:
                    yield Delivery(app.name, trigger.name, fired.key, settings.templates[name], service, destination,
                                   seen[fired.moment])

    def _report(self, app: str, problem: str) -> None:
        """Once per app and problem until the next reload: a condition fails the same way every time."""
        if (app, problem) not in self._reported:
            self._reported.add((app, problem))
            log.warning(problem, extra={"app": app})
