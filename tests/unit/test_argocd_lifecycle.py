"""What to create, update, keep and delete as Argo CD definitions come and go; never delete on doubt."""

from __future__ import annotations

from dataclasses import replace

from agent.argocd import (
    ApplicationsSync,
    Definitions,
    Generated,
    GenerationFailed,
    Refused,
    Removal,
    SetPolicy,
    check_projects,
    claim_names,
    next_adopted,
    next_generated,
    next_removed_set,
)
from agent.config import AppSpec
from agent.model import ConditionType

ORIGIN = "argocd/applicationsets/all-services.yaml: ApplicationSet all-services"


def app(name: str, *, path: str = "", prune_on_delete: bool = True) -> AppSpec:
    return AppSpec(name=name, repo="https://git.example.com/r.git", path=path or f"apps/{name}",
                   prune_on_delete=prune_on_delete, parent="root", origin=ORIGIN)


PREVIOUS = {"a": app("a"), "b": app("b", prune_on_delete=False), "c": app("c")}


def test_generation_creates_updates_deletes_and_keeps_under_the_default_policy() -> None:
    outcome = Generated(apps=(app("a"), app("b", path="apps/b2", prune_on_delete=False), app("d")))
    change = next_generated(PREVIOUS, outcome, SetPolicy(), origin=ORIGIN)
    assert [spec.name for spec in change.create] == ["d"]
    assert [spec.path for spec in change.update] == ["apps/b2"]
    assert change.delete == (Removal("c", delete_resources=True),)
    assert change.keep == ("a",)
    assert change.conditions == ()


def test_create_only_neither_updates_nor_deletes() -> None:
    outcome = Generated(apps=(app("a"), app("b", path="apps/b2"), app("d")))
    change = next_generated(PREVIOUS, outcome, SetPolicy(ApplicationsSync.CREATE_ONLY), origin=ORIGIN)
    assert ([s.name for s in change.create], change.update, change.delete) == (["d"], (), ())
    assert change.keep == ("a", "b", "c")


def test_create_update_never_deletes_and_create_delete_never_updates() -> None:
    outcome = Generated(apps=(app("a", path="apps/a2"),))
    create_update = next_generated(PREVIOUS, outcome, SetPolicy(ApplicationsSync.CREATE_UPDATE), origin=ORIGIN)
    assert ([s.name for s in create_update.update], create_update.delete, create_update.keep) == (["a"], (),
                                                                                                  ("b", "c"))
    create_delete = next_generated(PREVIOUS, outcome, SetPolicy(ApplicationsSync.CREATE_DELETE), origin=ORIGIN)
    assert (create_delete.update, create_delete.keep) == ((), ("a",))
    assert [r.name for r in create_delete.delete] == ["b", "c"]


def test_a_removed_app_keeps_its_objects_when_it_had_no_resources_finalizer() -> None:
    change = next_generated(PREVIOUS, Generated(apps=(app("a"), app("c"))), SetPolicy(), origin=ORIGIN)
    assert change.delete == (Removal("b", delete_resources=False),)


def test_a_generator_error_keeps_every_app_and_says_why() -> None:
    change = next_generated(PREVIOUS, GenerationFailed(f"{ORIGIN}: spec.generators[0]: repository unreachable"),
                            SetPolicy(), origin=ORIGIN)
    assert (change.create, change.update, change.delete, change.keep) == ((), (), (), ("a", "b", "c"))
    (condition,) = change.conditions
    assert condition.type is ConditionType.COMPARISON_ERROR
    assert "repository unreachable" in condition.message and "(a, b, c) are kept" in condition.message


def test_a_sudden_zero_keeps_every_app_unless_the_set_allows_empty() -> None:
    change = next_generated(PREVIOUS, Generated(), SetPolicy(), origin=ORIGIN)
    assert (change.delete, change.keep) == ((), ("a", "b", "c"))
    assert 'gitops-agent.io/allow-empty: "true"' in change.conditions[0].message
    allowed = next_generated(PREVIOUS, Generated(), SetPolicy(allow_empty=True), origin=ORIGIN)
    assert [r.name for r in allowed.delete] == ["a", "b", "c"]


def test_zero_from_zero_is_no_doubt() -> None:
    assert next_generated({}, Generated(), SetPolicy(), origin=ORIGIN).conditions == ()


def test_a_refused_generated_app_is_not_deleted() -> None:
    refusal = Refused(kind="Application", name="c", origin=ORIGIN, message="helm is not supported", unsupported=True)
    change = next_generated(PREVIOUS, Generated(apps=(app("a"), app("b", prune_on_delete=False)),
                                                refused=(refusal,)), SetPolicy(), origin=ORIGIN)
    assert change.delete == ()
    assert change.refused == (refusal,)  # shown Unknown from now on, nothing applied
    assert change.keep == ("a", "b")
    kept = next_generated(PREVIOUS, Generated(apps=(app("a"),), refused=(refusal,)),
                          SetPolicy(ApplicationsSync.CREATE_ONLY), origin=ORIGIN)
    assert (kept.refused, kept.keep) == ((), ("a", "b", "c"))  # create-only: the running spec stays


def test_a_set_removed_from_git_takes_its_apps_only_when_the_parent_prunes_and_its_policy_deletes() -> None:
    gone = next_removed_set(PREVIOUS, SetPolicy(), origin=ORIGIN, prune=True)
    assert gone.delete == (Removal("a", True), Removal("b", False), Removal("c", True))
    unpruned = next_removed_set(PREVIOUS, SetPolicy(), origin=ORIGIN, prune=False)
    assert (unpruned.delete, unpruned.requires_pruning) == ((), ("a", "b", "c"))
    protected = next_removed_set(PREVIOUS, SetPolicy(ApplicationsSync.CREATE_UPDATE), origin=ORIGIN, prune=True)
    assert (protected.delete, protected.keep) == ((), ("a", "b", "c"))


def test_an_application_removed_from_git() -> None:
    definitions = Definitions(apps=(app("a"), app("c", path="apps/c2")))
    pruned = next_adopted(PREVIOUS, definitions, prune=True)
    assert pruned.delete == (Removal("b", delete_resources=False),)  # no finalizer: its objects stay
    assert ([s.name for s in pruned.update], pruned.keep) == (["c"], ("a",))
    kept = next_adopted(PREVIOUS, definitions, prune=False)
    assert (kept.delete, kept.requires_pruning, kept.keep) == ((), ("b",), ("a", "b"))


def test_nothing_is_removed_while_a_definition_cannot_be_named() -> None:
    definitions = Definitions(apps=(app("a"),), errors=("x.yaml: Application: metadata.name: is required",),
                              complete=False)
    change = next_adopted(PREVIOUS, definitions, prune=True)
    assert (change.delete, change.requires_pruning) == ((), ())
    messages = [condition.message for condition in change.conditions]
    assert "x.yaml: Application: metadata.name: is required" in messages
    assert any("(b, c) are kept" in message for message in messages)


def test_the_first_declaration_of_a_name_keeps_it() -> None:
    git = replace(app("payment-service"), origin="argocd/applications/payment-service-app.yaml")
    kept, conditions = claim_names([git, app("ledger")], {"payment-service": "/etc/gitops-agent/config.toml: "
                                                                              "applications[0]"})
    assert [spec.name for spec in kept] == ["ledger"]
    (condition,) = conditions
    assert condition.message == (
        "application payment-service is declared twice: in /etc/gitops-agent/config.toml: applications[0] and in "
        "argocd/applications/payment-service-app.yaml; the one in /etc/gitops-agent/config.toml: applications[0] "
        "keeps running")


def test_an_app_naming_a_project_that_exists_nowhere_is_refused() -> None:
    seed = replace(app("payment-service"), project="payments-project", origin="argocd/applications/p.yaml")
    kept, refused = check_projects([seed, app("ledger"), replace(app("fx"), project="payments-team")],
                                   ["payments-team"])
    assert [spec.name for spec in kept] == ["ledger", "fx"]  # "default" always exists
    (refusal,) = refused
    assert (refusal.name, refusal.unsupported) == ("payment-service", False)
    assert refusal.message == ("argocd/applications/p.yaml: Application payment-service: spec.project: project "
                               "'payments-project' does not exist (known: default, payments-team)")
