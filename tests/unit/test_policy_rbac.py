"""API RBAC with Argo CD's model: built-in roles, the seed's project roles, deny beats allow, aliases."""

from __future__ import annotations

import pytest

from agent.model import ProjectRole, ProjectSpec
from agent.policy import PolicyError, Rbac, Subject, parse_policy_csv, project_role_lines

# The seed's roles, exactly as the payments team wrote them.
PAYMENTS = ProjectSpec(name="payments-team", roles=(
    ProjectRole("developer", policies=("p, proj:payments-team:developer, applications, get, *, allow",
                                       "p, proj:payments-team:developer, applications, sync, *, allow"),
                groups=("payments-devs",)),
    ProjectRole("admin", policies=("p, proj:payments-team:admin, applications, *, *, allow",)),
))


def test_seed_roles_validate_although_their_object_is_a_bare_star() -> None:
    # Argo CD would refuse `*` as the object of a project policy; the seed writes it, so it must be
    # read as the project's own apps: payments-team/*.
    lines = project_role_lines(PAYMENTS)
    assert ("p", "proj:payments-team:developer", "applications", "get", "payments-team/*", "allow") in lines
    assert ("g", "payments-devs", "proj:payments-team:developer") in lines


def rbac(policy_csv: str = "", policy_default: str = "") -> Rbac:
    return Rbac.build(policy_csv=policy_csv, policy_default=policy_default, projects=[PAYMENTS])


def test_developer_may_get_and_sync_but_not_roll_back() -> None:
    enforcer = rbac("g, alice, proj:payments-team:developer")
    alice = Subject("alice")
    assert enforcer.allowed(alice, "get", "payments-team", "api")
    assert enforcer.allowed(alice, "sync", "payments-team", "api")
    assert enforcer.allowed(alice, "refresh", "payments-team", "api"), "refresh counts as get"
    assert enforcer.allowed(alice, "resume", "payments-team", "api"), "resume counts as sync"
    assert not enforcer.allowed(alice, "rollback", "payments-team", "api")
    assert not enforcer.allowed(alice, "override", "payments-team", "api")
    assert not enforcer.allowed(alice, "get", "ledger", "api"), "a project role stays in its project"


def test_project_admin_may_do_everything_in_its_project_only() -> None:
    enforcer = rbac("g, carol, proj:payments-team:admin")
    for action in ("get", "sync", "rollback", "override", "refresh", "resume"):
        assert enforcer.allowed(Subject("carol"), action, "payments-team", "api"), action
    assert not enforcer.allowed(Subject("carol"), "get", "ledger", "api")


def test_a_tokens_groups_may_name_a_role_or_a_project_role() -> None:
    enforcer = rbac()
    assert enforcer.allowed(Subject("ci", ("payments-devs",)), "sync", "payments-team", "api")  # role's groups
    assert enforcer.allowed(Subject("ci", ("proj:payments-team:developer",)), "sync", "payments-team", "api")
    assert enforcer.allowed(Subject("proj:payments-team:admin"), "rollback", "payments-team", "api")
    assert not enforcer.allowed(Subject("proj:payments-team:admin"), "get", "ledger", "api")
    assert not enforcer.allowed(Subject("ci", ("other-team",)), "get", "payments-team", "api")


def test_builtin_readonly_and_admin() -> None:
    enforcer = rbac("g, viewer, role:readonly\ng, root, role:admin")
    assert enforcer.allowed(Subject("viewer"), "get", "ledger", "x")
    assert not enforcer.allowed(Subject("viewer"), "sync", "ledger", "x")
    for action in ("get", "sync", "rollback", "override"):
        assert enforcer.allowed(Subject("root"), action, "ledger", "x")


def test_policy_default_is_held_by_every_authenticated_subject() -> None:
    enforcer = rbac(policy_default="role:readonly")
    assert enforcer.allowed(Subject("nobody-in-particular"), "get", "payments-team", "api")
    assert not enforcer.allowed(Subject("nobody-in-particular"), "sync", "payments-team", "api")
    assert not rbac().allowed(Subject("nobody-in-particular"), "get", "payments-team", "api"), "no default: nothing"


def test_deny_beats_allow_across_user_groups_and_default_role() -> None:
    enforcer = rbac("""
        p, role:deployer, applications, sync, */*, allow
        p, role:deployer, applications, get, */*, allow
        g, dave, role:deployer
        g, dave, role:admin
        p, dave, applications, sync, payments-team/prod-*, deny
        p, contractors, applications, *, */*, deny
    """, policy_default="role:readonly")
    dave = Subject("dave")
    assert enforcer.allowed(dave, "sync", "payments-team", "staging-api")
    assert not enforcer.allowed(dave, "sync", "payments-team", "prod-api"), "his own deny beats role:admin"
    assert not enforcer.allowed(dave, "resume", "payments-team", "prod-api")
    assert not enforcer.allowed(Subject("erin", ("contractors",)), "get", "ledger", "x"), \
        "a group's deny beats the default role's allow"


def test_policy_lines_are_checked() -> None:
    assert parse_policy_csv("# comment\n\np, a, applications, get, */*, allow\ng, b, role:admin\n") == [
        ("p", "a", "applications", "get", "*/*", "allow"), ("g", "b", "role:admin")]
    with pytest.raises(PolicyError, match="policy_csv line 2: effect must be allow or deny"):
        parse_policy_csv("p, a, applications, get, */*, allow\np, a, applications, get, */*, maybe")
    with pytest.raises(PolicyError, match="line 1: a g line has two fields"):
        parse_policy_csv("g, a")
    with pytest.raises(PolicyError, match="the subject must be proj:payments-team:developer"):
        project_role_lines(ProjectSpec(name="payments-team", roles=(
            ProjectRole("developer", policies=("p, role:admin, applications, get, *, allow",)),)))
    with pytest.raises(PolicyError, match="the object must be payments-team/"):
        project_role_lines(ProjectSpec(name="payments-team", roles=(
            ProjectRole("developer", policies=("p, proj:payments-team:developer, applications, get, ledger/*, allow",
                                               )),)))
