"""Who hears of a trigger: subscriptions from the configuration and Argo CD's annotations. Pure.

    notifications.argoproj.io/subscribe.<trigger>.<service>: <recipient>[;<recipient>]

on an app (TOML `annotations`, or an adopted Application's) subscribes it, as in Argo CD.
`[[notifications.subscriptions]]` entries match apps by name globs and by a label selector
(Kubernetes' syntax: `team=payments,tier!=test,env in (prod,dr),!legacy`).

A destination is a (service, recipient) pair; each is sent one message per trigger and
template however many subscriptions name it (several subscriptions naming the same channel
were a cause of Argo CD's duplicate messages).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

SUBSCRIBE_PREFIX = "notifications.argoproj.io/subscribe."
_LABEL_KEY = re.compile(r"([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
_SET = re.compile(r"^(!?)\s*([^\s!=]+)\s+(in|notin)\s+\((.*)\)$")
_EQUALITY = re.compile(r"^([^\s!=]+)\s*(==|=|!=)\s*(\S*)$")


@dataclass(frozen=True, order=True)
class Destination:
    service: str
    recipient: str = ""

    def __str__(self) -> str:
        return f"{self.service}:{self.recipient}" if self.recipient else self.service


def parse_destination(text: str) -> Destination:
    """`slack:payments-deployments`, `email:oncall@example.com`, or a service alone (`oncall`)."""
    service, _, recipient = text.strip().partition(":")
    if not service.strip():
        raise ValueError(f"{text!r} names no service (write SERVICE:RECIPIENT, like \"slack:payments\")")
    return Destination(service.strip(), recipient.strip())


# ---------------------------------------------------------------- label selectors


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!exists":
            return not present
        if self.operator in ("=", "in"):
            return present and labels[self.key] in self.values
        return not present or labels[self.key] not in self.values  # != and notin, as Kubernetes has them


@dataclass(frozen=True)
class Selector:
    source: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)


def parse_selector(text: str) -> Selector:
    """A Kubernetes label selector in its string form; ValueError names the part that is wrong."""
    requirements = [_requirement(part.strip()) for part in _split_selector(text)]
    if not requirements:
        raise ValueError("is empty")
    return Selector(text, tuple(requirements))


def _split_selector(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part for part in parts if part.strip()]


def _requirement(part: str) -> Requirement:
    found = _SET.match(part)
    if found and not found[1]:
        values = tuple(value.strip() for value in found[4].split(",") if value.strip())
        return Requirement(_key(found[2], part), found[3], tuple(_value(v, part) for v in values))
    found = _EQUALITY.match(part)
    if found:
        operator = "!=" if found[2] == "!=" else "="
        return Requirement(_key(found[1], part), operator, (_value(found[3], part),))
    if part.startswith("!"):
        return Requirement(_key(part[1:].strip(), part), "!exists")
    return Requirement(_key(part, part), "exists")


def _key(key: str, part: str) -> str:
    if key == part and not _LABEL_KEY.fullmatch(key):
        raise ValueError(f"{part!r} is not KEY, !KEY, KEY=VALUE, KEY!=VALUE, KEY in (...) or KEY notin (...)")
    if not _LABEL_KEY.fullmatch(key):
        raise ValueError(f"{part!r}: {key!r} is not a label key")
    return key


def _value(value: str, part: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE.fullmatch(value):
        raise ValueError(f"{part!r}: {value!r} is not a label value")
    return value


# ---------------------------------------------------------------- who hears of a trigger


class Subscription(Protocol):
    @property
    def recipients(self) -> tuple[Destination, ...]: ...
    @property
    def triggers(self) -> tuple[str, ...]: ...
    @property
    def applications(self) -> tuple[str, ...]: ...
    @property
    def selector(self) -> Selector | None: ...


def annotation_subscriptions(annotations: Mapping[str, str]) -> dict[str, set[Destination]]:
    """Argo CD's `subscribe.<trigger>.<service>` annotations: trigger → destinations. An annotation
    without both a trigger and a service is not a subscription (Argo CD's default triggers, the
    `subscribe..<service>` form, are not supported) and is left out."""
    found: dict[str, set[Destination]] = {}
    for key, value in annotations.items():
        if not key.startswith(SUBSCRIBE_PREFIX):
            continue
        trigger, dot, service = key[len(SUBSCRIBE_PREFIX):].partition(".")
        if not dot or not trigger or not service:
            continue
        recipients = [recipient.strip() for recipient in value.split(";")]
        destinations = {Destination(service, recipient) for recipient in recipients if recipient}
        found.setdefault(trigger, set()).update(destinations or {Destination(service)})
    return found


def app_matches(subscription: Subscription, name: str, labels: Mapping[str, str]) -> bool:
    if subscription.applications and not any(fnmatch.fnmatchcase(name, glob) for glob in subscription.applications):
        return False
    return subscription.selector is None or subscription.selector.matches(labels)


def destinations(subscriptions: Sequence[Subscription], *, trigger: str, name: str,
                 labels: Mapping[str, str], annotations: Mapping[str, str]) -> tuple[Destination, ...]:
    """Every destination subscribed to `trigger` for this app, each once, in a stable order."""
    found: set[Destination] = set(annotation_subscriptions(annotations).get(trigger, ()))
    for subscription in subscriptions:
        if trigger in subscription.triggers and app_matches(subscription, name, labels):
            found.update(subscription.recipients)
    return tuple(sorted(found))
