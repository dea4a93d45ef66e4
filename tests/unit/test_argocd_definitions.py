"""A parent's render → the Argo CD definitions in it: what is adopted, refused, and declared twice."""

from __future__ import annotations

from typing import Any

import yaml

from agent.argocd import parse_definitions, split_definitions
from agent.model import ConditionType, Manifest
from tests.unit.argocd_seed import SEED_APP_PROJECT, SEED_APPLICATION


def application(name: str, **spec: Any) -> dict[str, Any]:
    body = {"source": {"repoURL": "https://git.example.com/r.git", "path": f"apps/{name}"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "payments"}, **spec}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": name}, "spec": body}


def manifests(*objs: tuple[str, dict[str, Any]]) -> list[Manifest]:
    return [Manifest(obj=obj, source=source, index=0) for source, obj in objs]


ROLLOUT = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout", "metadata": {"name": "api"}}
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}


def test_only_argo_cd_definitions_are_split_out() -> None:
    render = manifests(("a.yaml", application("a")), ("rollout.yaml", ROLLOUT), ("cm.yaml", CONFIGMAP),
                       ("p.yaml", yaml.safe_load(SEED_APP_PROJECT)))
    definitions, others = split_definitions(render)
    assert [m.source for m in definitions] == ["a.yaml", "p.yaml"]
    assert [m.source for m in others] == ["rollout.yaml", "cm.yaml"]  # Argo Rollouts' kinds are applied as usual


def test_the_seed_definitions_are_adopted_with_their_parent() -> None:
    found = parse_definitions(manifests(
        ("argocd/applications/payment-service-app.yaml", yaml.safe_load(SEED_APPLICATION)),
        ("argocd/projects/payments-project.yaml", yaml.safe_load(SEED_APP_PROJECT)),
        ("cm.yaml", CONFIGMAP)), parent="root")
    (app,) = found.apps
    (project,) = found.projects
    assert (app.name, app.parent, app.origin) == ("payment-service", "root",
                                                  "argocd/applications/payment-service-app.yaml")
    assert project.name == "payments-team"
    assert (found.refused, found.errors, found.complete) == ((), (), True)


def test_an_unsupported_application_is_refused_by_name_and_keeps_the_parent_synced() -> None:
    helm = application("chart", source={"repoURL": "https://charts.example.com", "chart": "nginx"})
    found = parse_definitions(manifests(("apps/chart.yaml", helm), ("apps/b.yaml", application("b"))), parent="root")
    assert [app.name for app in found.apps] == ["b"]
    (refusal,) = found.refused
    assert (refusal.kind, refusal.name, refusal.unsupported) == ("Application", "chart", True)
    assert "apps/chart.yaml: Application chart: spec.source.chart" in refusal.message
    assert found.errors == ()


def test_an_invalid_application_is_refused_and_is_an_error_of_the_parent() -> None:
    bad = application("bad", syncPolicy={"automated": {"prune": "yes"}})
    found = parse_definitions(manifests(("apps/bad.yaml", bad)), parent="root")
    assert found.refused_names("Application") == {"bad"}
    (condition,) = found.conditions
    assert condition.type is ConditionType.INVALID_SPEC_ERROR
    assert condition.message.startswith("apps/bad.yaml: Application bad: spec.syncPolicy.automated.prune")
    assert found.complete


def test_a_definition_without_a_name_makes_the_render_incomplete() -> None:
    nameless = application("x")
    del nameless["metadata"]["name"]
    found = parse_definitions(manifests(("apps/x.yaml", nameless)), parent="root")
    assert not found.complete
    assert found.errors == ("apps/x.yaml: Application: metadata.name: is required",)


def test_a_name_declared_twice_names_both_files_and_the_first_wins() -> None:
    found = parse_definitions(manifests(("apps/one.yaml", application("api")),
                                        ("apps/two.yaml", application("api", project="other"))), parent="root")
    (app,) = found.apps
    assert app.origin == "apps/one.yaml"
    (error,) = found.errors
    assert "apps/one.yaml (document 1)" in error and "apps/two.yaml (document 1)" in error
    assert "the first is used" in error


def test_an_application_and_a_project_may_share_a_name() -> None:
    project = yaml.safe_load(SEED_APP_PROJECT)
    found = parse_definitions(manifests(("a.yaml", application("payments-team")), ("p.yaml", project)),
                              parent="root")
    assert (len(found.apps), len(found.projects), found.errors) == (1, 1, ())


def test_a_refused_set_is_named_so_its_apps_are_kept() -> None:
    appset = {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "all"},
              "spec": {"generators": [{"clusters": {}}], "template": {"metadata": {}, "spec": {}}}}
    found = parse_definitions(manifests(("sets/all.yaml", appset)), parent="root")
    assert found.refused_names("ApplicationSet") == {"all"}
    assert found.sets == ()
