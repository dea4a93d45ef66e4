"""ignore_differences: jq path expressions, group/kind globs, and RespectIgnoreDifferences."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from agent.engine.diff import differs
from agent.engine.ignore import matching_rules, remove_jq, respect_ignored
from agent.engine.plan import make_plan
from agent.model import IgnoreDifference, ObjectRef, SyncPolicy


def deployment(image: str = "api:v1", replicas: int = 1, sidecar: str = "proxy:v1") -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "api", "namespace": "ns"},
            "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                {"name": "api", "image": image}, {"name": "sidecar", "image": sidecar}]}}}}


SIDECAR = '.spec.template.spec.containers[] | select(.name == "sidecar") | .image'


def test_a_jq_path_expression_removes_what_it_selects() -> None:
    rule = IgnoreDifference(kind="Deployment", group="apps", jq_path_expressions=(SIDECAR,))
    assert not differs(deployment(sidecar="proxy:v2"), deployment(), [rule])
    assert differs(deployment(image="api:v2"), deployment(), [rule])


def test_a_jq_expression_that_fails_on_an_object_ignores_nothing_there() -> None:
    obj = deployment()
    assert remove_jq(obj, ".spec.template.spec.initContainers[] | .image") == obj


@pytest.mark.parametrize(("group", "kind", "matches"), [
    ("*", "*", True), ("apps", "*", True), ("*", "Deployment", True), ("app?", "Deploy*", True),
    ("", "Deployment", False), ("apps", "StatefulSet", False)])
def test_group_and_kind_are_globs(group: str, kind: str, matches: bool) -> None:
    rule = IgnoreDifference(kind=kind, group=group, json_pointers=("/spec/replicas",))
    assert bool(matching_rules(ObjectRef("apps", "Deployment", "ns", "api"), [rule])) is matches


def test_respect_ignore_differences_keeps_live_values_of_ignored_fields() -> None:
    live = deployment(replicas=5, sidecar="proxy:v9")
    live["spec"]["strategy"] = {"rollingUpdate": {"maxSurge": 2}}
    rules = [IgnoreDifference(kind="Deployment", group="apps", json_pointers=(
        "/spec/replicas", "/spec/strategy/rollingUpdate"), jq_path_expressions=(SIDECAR,))]
    desired = deployment(image="api:v2", replicas=1, sidecar="proxy:v1")
    kept = copy.deepcopy(desired)
    applied = respect_ignored(desired, live, rules)
    assert applied["spec"]["replicas"] == 5
    assert applied["spec"]["template"]["spec"]["containers"] == [{"name": "api", "image": "api:v2"},
                                                                 {"name": "sidecar", "image": "proxy:v9"}]
    assert "strategy" not in applied["spec"], "a parent the desired object lacks is not made up"
    assert desired == kept, "the desired object is not changed in place"


def test_respect_ignore_differences_drops_an_ignored_field_live_does_not_have() -> None:
    live = deployment()
    del live["spec"]["replicas"]
    rule = IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/spec/replicas",))
    assert "replicas" not in respect_ignored(deployment(), live, [rule])["spec"]


def test_the_plan_applies_the_respected_object_only_with_the_option() -> None:
    live = {ObjectRef("apps", "Deployment", "ns", "api"): deployment(replicas=5)}
    rules = [IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/spec/replicas",))]
    plain = make_plan("shop", [deployment(image="api:v2")], live, {}, policy=SyncPolicy(), ignore=rules)
    assert plain.objects[0].desired["spec"]["replicas"] == 1
    policy = SyncPolicy(options=frozenset({"RespectIgnoreDifferences=true"}))
    respected = make_plan("shop", [deployment(image="api:v2")], live, {}, policy=policy, ignore=rules)
    assert respected.objects[0].desired["spec"]["replicas"] == 5
