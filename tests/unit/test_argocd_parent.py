"""A parent's render → its children, projects, removals and own status; never delete on doubt."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import yaml

from agent.argocd import Generated, GenerationFailed, Removal, generate, parse_definitions
from agent.argocd.parent import ParentDecision, Rendered, decide
from agent.argocd.view import child_spec, with_definitions, without_definitions
from agent.config import AppSpec
from agent.model import Adopted, AppState, AppStatus, ConditionType, Manifest, SyncStatus
from agent.state.codec import state_from_dict, state_to_dict

REPO = "https://git.example.com/payments/gitops.git"


def application(name: str, *, finalizer: bool = True, project: str = "payments-team", **source: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": "argocd"}
    if finalizer:
        meta["finalizers"] = ["resources-finalizer.argocd.argoproj.io"]
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": meta,
            "spec": {"project": project, "source": {"repoURL": REPO, "path": f"apps/{name}", **source},
                     "destination": {"server": "https://kubernetes.default.svc", "namespace": "payments"},
                     "syncPolicy": {"automated": {"prune": True}}}}


PROJECT = {"apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject", "metadata": {"name": "payments-team"},
           "spec": {"sourceRepos": ["*"], "destinations": [{"server": "*", "namespace": "*"}]}}


def app_set(*, elements: list[dict[str, str]], **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet", "metadata": {"name": "tenants"},
            "spec": {"generators": [{"list": {"elements": elements}}],
                     "template": {"metadata": {"name": "{{tenant}}-ledger"},
                                  "spec": {"project": "payments-team",
                                           "source": {"repoURL": REPO, "path": "apps/ledger"},
                                           "destination": {"name": "in-cluster", "namespace": "{{tenant}}"}}},
                     **spec}}


def manifests(*objects: Mapping[str, Any]) -> tuple[Manifest, ...]:
    files = {"Application": "argocd/applications", "AppProject": "argocd/projects",
             "ApplicationSet": "argocd/applicationsets"}
    return tuple(Manifest(dict(obj), f"{files[obj['kind']]}/{obj['metadata'].get('name', 'x')}.yaml", 0)
                 for obj in objects)


def rendered(*objects: Mapping[str, Any]) -> Rendered:
    found = manifests(*objects)
    definitions = parse_definitions(found, parent="root")
    generated = {}
    for spec in definitions.sets:
        outcome = generate(spec, {})
        assert isinstance(outcome, Generated | GenerationFailed)
        generated[spec.name] = outcome
    return Rendered(manifests=found, definitions=definitions, generated=generated)


def run(render: Rendered, previous: ParentDecision | None = None, *, prune: bool = True,
        taken: Mapping[str, str] | None = None, projects: Mapping[str, str] | None = None) -> ParentDecision:
    running = dict(previous.specs) if previous else {}
    return decide("root", render, previous=previous.adopted if previous else None, running=running,
                  taken=taken or {}, projects=projects or {}, prune=prune)


def states(decision: ParentDecision) -> dict[str, tuple[str, str]]:
    return {f"{r.ref.kind}/{r.ref.name}": (r.sync_status.value, r.health_message)
            for r in decision.adopted.resources}


def test_a_first_render_adopts_applications_projects_and_generated_apps() -> None:
    decision = run(rendered(application("payments"), application("ledger", finalizer=False), PROJECT,
                            app_set(elements=[{"tenant": "std"}, {"tenant": "ned"}])))
    assert sorted(decision.specs) == ["ledger", "ned-ledger", "payments", "std-ledger"]
    assert [project.name for project in decision.projects] == ["payments-team"]
    assert decision.adopted.in_sync and decision.adopted.conditions == () and decision.removals == ()
    assert all(child.refusal == "" for child in decision.adopted.children)
    assert {child.name: child.source for child in decision.adopted.children} == {
        "ledger": "", "payments": "", "ned-ledger": "tenants", "std-ledger": "tenants"}
    assert decision.specs["std-ledger"].prune_on_delete and decision.specs["std-ledger"].namespace == "std"
    assert states(decision) == {"AppProject/payments-team": ("Synced", ""), "Application/ledger": ("Synced", ""),
                                "Application/payments": ("Synced", ""),
                                "ApplicationSet/tenants": ("Synced", "2 applications")}


def test_an_application_gone_from_git_goes_with_or_without_its_objects() -> None:
    first = run(rendered(application("payments"), application("ledger", finalizer=False), PROJECT))
    second = run(rendered(PROJECT), first)
    assert set(second.removals) == {Removal("ledger", delete_resources=False),
                                    Removal("payments", delete_resources=True)}
    assert second.specs == {} and second.adopted.in_sync


def test_a_parent_that_does_not_prune_keeps_a_removed_app_requiring_pruning() -> None:
    first = run(rendered(application("payments"), application("ledger"), PROJECT))
    second = run(rendered(application("payments"), PROJECT), first, prune=False)
    assert second.removals == () and sorted(second.specs) == ["ledger", "payments"]
    assert not second.adopted.in_sync
    assert "1 applications require pruning: ledger" in second.adopted.conditions[0].message
    assert states(second)["Application/ledger"] == ("OutOfSync", "requires pruning")


def test_a_helm_application_is_shown_unknown_and_nothing_of_it_runs() -> None:
    decision = run(rendered(application("charts", helm={"valueFiles": ["values.yaml"]}), PROJECT))
    (child,) = decision.adopted.children
    assert "spec.source.helm (Helm) is not supported" in child.refusal
    assert decision.specs["charts"].repo == "" and decision.specs["charts"].project == "payments-team"
    assert decision.adopted.in_sync, "an unsupported field is the child's condition, not the parent's"


def test_an_invalid_application_keeps_the_parent_out_of_sync_naming_file_and_field() -> None:
    broken = application("payments", syncPolicy=None)
    broken["spec"]["syncPolicy"] = {"retry": {"backoff": {"duration": "soon"}}}
    decision = run(rendered(broken, PROJECT))
    assert not decision.adopted.in_sync
    (condition,) = decision.adopted.conditions
    assert condition.type is ConditionType.INVALID_SPEC_ERROR
    assert condition.message.startswith("argocd/applications/payments.yaml: Application payments: "
                                        "spec.syncPolicy.retry.backoff.duration: 'soon' is not a duration")
    assert states(decision)["Application/payments"][0] == "OutOfSync"


def test_a_name_declared_elsewhere_is_a_condition_naming_both_and_the_first_keeps_it() -> None:
    decision = run(rendered(application("payments"), PROJECT), taken={"payments": "agent.toml: applications[1]"})
    assert decision.specs == {} and not decision.adopted.in_sync
    assert decision.adopted.conditions[0].message == (
        "application payments is declared twice: in agent.toml: applications[1] and in "
        "argocd/applications/payments.yaml; the one in agent.toml: applications[1] keeps running")


def test_a_running_app_whose_definition_is_refused_stops_keeping_its_spec_then_runs_again() -> None:
    first = run(rendered(application("payments"), PROJECT))
    refused = run(rendered(application("payments", helm={"values": "a: b"}), PROJECT), first)
    (child,) = refused.adopted.children
    assert child.refusal and refused.specs["payments"] == first.specs["payments"] and refused.removals == ()
    fixed = run(rendered(application("payments"), PROJECT), refused)
    assert fixed.adopted.children[0].refusal == "" and fixed.specs["payments"] == first.specs["payments"]


def test_a_definition_without_a_name_removes_nothing() -> None:
    first = run(rendered(application("payments"), application("ledger"), PROJECT))
    nameless = application("x")
    del nameless["metadata"]["name"]
    second = run(rendered(nameless, PROJECT), first)
    assert second.removals == () and sorted(second.specs) == ["ledger", "payments"]
    assert not second.adopted.in_sync


def test_a_set_that_fails_or_suddenly_yields_nothing_keeps_every_app() -> None:
    first = run(rendered(PROJECT, app_set(elements=[{"tenant": "std"}, {"tenant": "ned"}])))
    empty = run(rendered(PROJECT, app_set(elements=[])), first)
    assert empty.removals == () and sorted(empty.specs) == ["ned-ledger", "std-ledger"]
    assert "generated no applications" in empty.adopted.conditions[0].message
    assert states(empty)["ApplicationSet/tenants"][0] == "OutOfSync"
    failing = rendered(PROJECT, app_set(elements=[{"tenant": "std"}]))
    failing = Rendered(failing.manifests, failing.definitions, {"tenants": GenerationFailed("git is down")})
    failed = run(failing, first)
    assert failed.removals == () and sorted(failed.specs) == ["ned-ledger", "std-ledger"]
    assert "git is down" in failed.adopted.conditions[0].message


def test_an_invalid_set_file_keeps_its_apps() -> None:
    first = run(rendered(PROJECT, app_set(elements=[{"tenant": "std"}])))
    broken = app_set(elements=[{"tenant": "std"}], syncPolicy={"applicationsSync": "sometimes"})
    second = run(rendered(PROJECT, broken), first)
    assert second.removals == () and list(second.specs) == ["std-ledger"] and not second.adopted.in_sync
    assert "applicationsSync" in second.adopted.conditions[0].message


def test_a_set_gone_from_git_removes_its_apps_as_its_policy_allows() -> None:
    first = run(rendered(PROJECT, app_set(elements=[{"tenant": "std"}])))
    assert run(rendered(PROJECT), first).removals == (Removal("std-ledger", delete_resources=True),)
    preserving = run(rendered(PROJECT, app_set(elements=[{"tenant": "std"}],
                                               syncPolicy={"preserveResourcesOnDeletion": True})))
    assert run(rendered(PROJECT), preserving).removals == (Removal("std-ledger", delete_resources=False),)
    kept = run(rendered(PROJECT), first, prune=False)
    assert kept.removals == () and list(kept.specs) == ["std-ledger"]


def test_a_set_may_not_take_a_name_an_application_file_holds() -> None:
    decision = run(rendered(application("std-ledger"), PROJECT, app_set(elements=[{"tenant": "std"}])))
    assert [child.source for child in decision.adopted.children] == [""]
    assert "application std-ledger is declared twice" in decision.adopted.conditions[0].message


def test_an_app_project_declared_in_the_configuration_is_not_adopted_again() -> None:
    decision = run(rendered(PROJECT), projects={"payments-team": "agent.toml: projects[1]"})
    assert decision.projects == () and not decision.adopted.in_sync
    assert "AppProject payments-team is declared twice: in agent.toml: projects[1]" in \
        decision.adopted.conditions[0].message


def test_an_app_project_whose_roles_cannot_be_read_is_refused() -> None:
    project = yaml.safe_load(yaml.safe_dump(PROJECT))
    project["spec"]["roles"] = [{"name": "dev", "policies": ["p, proj:other:dev, applications, get, other/*, allow"]}]
    decision = run(rendered(project))
    assert decision.projects == ()
    assert "the subject must be proj:payments-team:dev" in decision.adopted.conditions[0].message


def test_the_parents_status_shows_its_definitions_and_gets_them_back_off() -> None:
    decision = run(rendered(application("payments"), PROJECT),
                   taken={"payments": "agent.toml: applications[1]"})
    own = AppStatus(name="root", sync_status=SyncStatus.SYNCED)
    shown = with_definitions(own, decision.adopted)
    assert shown.sync_status is SyncStatus.OUT_OF_SYNC
    assert {r.ref.kind for r in shown.resources} == {"Application", "AppProject"}
    assert without_definitions(shown, decision.adopted, compared_in_sync=True) == own
    assert with_definitions(own, None) is own


def test_a_child_is_run_again_from_its_parents_record() -> None:
    decision = run(rendered(application("payments"), application("charts", helm={"values": "x"}), PROJECT,
                            app_set(elements=[{"tenant": "std"}])))
    for child in decision.adopted.children:
        spec, refusal = child_spec(child, parent="root")
        assert (spec, refusal) == (decision.specs[child.name], child.refusal)
    lost = Adopted(children=(decision.adopted.children[0],))
    assert isinstance(child_spec(lost.children[0], parent="root")[0], AppSpec)


def test_a_parents_record_survives_the_snapshot() -> None:
    decision = run(rendered(application("payments"), application("charts", helm={"values": "x"}), PROJECT,
                            app_set(elements=[{"tenant": "std"}])))
    state = AppState.new("root")
    kept = state_from_dict("root", json.loads(json.dumps(state_to_dict(replace(state, adopted=decision.adopted)))))
    assert kept.adopted == decision.adopted
    assert [child.definition for child in kept.adopted.children] == [
        child.definition for child in decision.adopted.children]
    assert state_from_dict("root", state_to_dict(state)).adopted is None
