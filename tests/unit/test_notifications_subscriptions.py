"""Subscriptions: Argo CD's annotations, name globs and label selectors."""

from __future__ import annotations

import pytest

from agent.notifications.settings import SubscriptionSpec
from agent.notifications.subscriptions import (
    Destination,
    annotation_subscriptions,
    destinations,
    parse_destination,
    parse_selector,
)


def test_argo_cd_subscribe_annotations_are_read_with_several_recipients() -> None:
    found = annotation_subscriptions({
        "notifications.argoproj.io/subscribe.on-sync-succeeded.slack": "payments-deployments; releases",
        "notifications.argoproj.io/subscribe.on-sync-failed.email": "oncall@example.com",
        "notifications.argoproj.io/subscribe.on-deployed.github": "",
        "notifications.argoproj.io/subscribe..slack": "default-triggers",  # not supported: no trigger
        "notifications.argoproj.io/subscriptions": "[]",
        "team": "payments",
    })
    assert found == {
        "on-sync-succeeded": {Destination("slack", "payments-deployments"), Destination("slack", "releases")},
        "on-sync-failed": {Destination("email", "oncall@example.com")},
        "on-deployed": {Destination("github")},
    }


def test_a_destination_is_service_colon_recipient() -> None:
    assert parse_destination("email:oncall@example.com") == Destination("email", "oncall@example.com")
    assert parse_destination("oncall") == Destination("oncall")
    with pytest.raises(ValueError, match="names no service"):
        parse_destination(":channel")


@pytest.mark.parametrize(("selector", "labels", "matches"), [
    ("team=payments", {"team": "payments"}, True),
    ("team==payments", {"team": "search"}, False),
    ("team!=payments", {}, True),
    ("env in (prod, dr)", {"env": "dr"}, True),
    ("env notin (prod,dr)", {"env": "prod"}, False),
    ("tier", {"tier": ""}, True),
    ("!legacy", {"legacy": "yes"}, False),
    ("team=payments,env in (prod)", {"team": "payments", "env": "prod"}, True),
    ("team=payments,env in (prod)", {"team": "payments", "env": "dev"}, False),
])
def test_label_selectors_match_as_kubernetes_does(selector: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_selector(selector).matches(labels) is matches


@pytest.mark.parametrize("selector", ["", "env in (prod", "bad key=x", "team=a b"])
def test_bad_selectors_are_refused(selector: str) -> None:
    with pytest.raises(ValueError):
        parse_selector(selector)


def test_subscriptions_match_by_name_glob_and_selector() -> None:
    prod = SubscriptionSpec((Destination("slack", "prod"),), ("on-sync-failed",), applications=("*-prod",))
    team = SubscriptionSpec((Destination("slack", "team"),), ("on-sync-failed",),
                            selector=parse_selector("team=payments"))
    other = SubscriptionSpec((Destination("slack", "other"),), ("on-sync-succeeded",))

    def found(name: str, labels: dict[str, str]) -> tuple[Destination, ...]:
        return destinations([prod, team, other], trigger="on-sync-failed", name=name, labels=labels, annotations={})

    assert found("payment-service-prod", {"team": "payments"}) == (Destination("slack", "prod"),
                                                                    Destination("slack", "team"))
    assert found("payment-service-dev", {"team": "payments"}) == (Destination("slack", "team"),)
    assert found("payment-service-dev", {}) == ()
