"""Project rules as Argo CD reads them: globs and `!` negations, destinations, kinds, whole apps.

The examples are Argo CD's own (docs/user-guide/projects.md) and the payments team's AppProject.
"""

from __future__ import annotations

import pytest

from agent.model import Destination, ObjectRef, ProjectRole, ProjectSpec, ResourceKind
from agent.policy import (
    IN_CLUSTER_SERVER,
    Target,
    destination_permitted,
    find_project,
    kind_permitted,
    object_violation,
    repo_permitted,
    unknown_project,
    violations,
)
from agent.policy.globs import glob_match, kind_match, negatable_match

# The seed's AppProject, in our model.
PAYMENTS = ProjectSpec(
    name="payments-team",
    source_repos=("https://github.com/payments-engine/gitops.git",),
    destinations=(Destination(server=IN_CLUSTER_SERVER, namespace="payments"),
                  Destination(server=IN_CLUSTER_SERVER, namespace="payments-*")),
    cluster_resource_whitelist=(ResourceKind("", "Namespace"),),
    namespace_resource_whitelist=(ResourceKind("apps", "Deployment"), ResourceKind("", "Service"),
                                  ResourceKind("", "ConfigMap")),
    roles=(ProjectRole("developer"), ProjectRole("admin")),
)
REPO = "https://github.com/payments-engine/gitops.git"


@pytest.mark.parametrize(("pattern", "text", "separators", "expected"), [
    ("*", "a/b", "", True),
    ("*", "a/b", "/", False),
    ("**", "a/b", "/", True),
    ("payments-*", "payments-std-001", "", True),
    ("payments-*", "payment", "", False),
    ("a?c", "abc", "", True),
    ("a?c", "a/c", "/", False),
    ("[a-c]x", "bx", "", True),
    ("[!a-c]x", "bx", "", False),
    ("{dev,prod}-*", "prod-eu", "", True),
    ("{dev,prod}-*", "qa-eu", "", False),
    ("a\\*", "a*", "", True),
    ("a\\*", "ab", "", False),
    ("[unclosed", "[unclosed", "", False),  # does not compile: matches nothing
    ("{a,b", "a", "", False),
])
def test_gobwas_globs(pattern: str, text: str, separators: str, expected: bool) -> None:
    assert glob_match(pattern, text, separators) is expected


def test_filepath_globs_for_kinds() -> None:
    assert kind_match("*", "Deployment") and kind_match("", "") and not kind_match("", "apps")
    assert kind_match("*.k8s.io", "rbac.authorization.k8s.io")
    assert kind_match("Cluster*", "ClusterRoleBinding") and not kind_match("Role", "ClusterRole")
    assert kind_match("[^C]*", "Role") and not kind_match("[^C]*", "ClusterRole")


def test_negation_inverts_and_a_lone_star_matches_everything() -> None:
    assert negatable_match("!kube-system", "payments", allow_negation=True)
    assert not negatable_match("!kube-system", "kube-system", allow_negation=True)
    assert negatable_match("*", "a/b/c", allow_negation=True, separators="/")


# -------------------------------------------------------------------- sourceRepos


def test_argo_cd_documented_source_negations() -> None:
    project = ProjectSpec(name="p", source_repos=("!ssh://git@GITHUB.com:argoproj/test",
                                                  "!https://gitlab.com/group/**", "*"))
    assert not repo_permitted(project, "git@github.com:argoproj/test.git")
    assert not repo_permitted(project, "https://gitlab.com/group/sub/repo.git")
    assert repo_permitted(project, "https://gitlab.com/other/repo.git")
    assert repo_permitted(project, "git@github.com:argoproj/argo-cd.git")


def test_source_globs_stay_within_a_path_segment_and_urls_are_normalized() -> None:
    project = ProjectSpec(name="p", source_repos=("https://git.example.com/payments/*",))
    assert repo_permitted(project, "https://GIT.example.com/payments/gitops.git")
    assert not repo_permitted(project, "https://git.example.com/payments/team/deep.git")
    assert not repo_permitted(project, "https://git.example.com/ledger/gitops.git")
    assert repo_permitted(PAYMENTS, "https://github.com/payments-engine/gitops")  # .git or not
    assert not repo_permitted(ProjectSpec(name="empty"), REPO), "no source_repos: nothing permitted"


def test_a_deny_pattern_alone_permits_everything_else_as_in_argo_cd() -> None:
    # Argo CD reads `!x` as "anything but x": it is an allow rule for everything it does not deny.
    project = ProjectSpec(name="p", source_repos=("!https://evil.example.com/*",))
    assert repo_permitted(project, "https://good.example.com/x.git")
    assert not repo_permitted(project, "https://evil.example.com/x.git")


# -------------------------------------------------------------------- destinations


def test_argo_cd_documented_destination_negations() -> None:
    project = ProjectSpec(name="p", destinations=(
        Destination(server="*", namespace="!kube-system"),
        Destination(server="!https://team1-*", namespace="*"),
        Destination(server="*", namespace="*"),
    ))
    assert destination_permitted(project, "payments")
    assert not destination_permitted(project, "kube-system")
    assert not destination_permitted(project, "payments", server="https://team1-prod.example.com")
    assert destination_permitted(project, "payments", server="https://team2.example.com")


def test_seed_destinations_take_payments_and_its_tenant_namespaces_only() -> None:
    assert destination_permitted(PAYMENTS, "payments")
    assert destination_permitted(PAYMENTS, "payments-std-001")
    assert not destination_permitted(PAYMENTS, "kube-system")
    assert not destination_permitted(PAYMENTS, "payments", server="https://other-cluster.example.com")
    by_name = ProjectSpec(name="p", destinations=(Destination(name="in-cluster", namespace="*"),))
    assert destination_permitted(by_name, "anything")


# -------------------------------------------------------------------- kinds


def test_seed_kinds() -> None:
    assert kind_permitted(PAYMENTS, "apps", "Deployment", namespaced=True)
    assert kind_permitted(PAYMENTS, "", "ConfigMap", namespaced=True)
    assert not kind_permitted(PAYMENTS, "", "Secret", namespaced=True)
    assert kind_permitted(PAYMENTS, "", "Namespace", namespaced=False)
    assert not kind_permitted(PAYMENTS, "rbac.authorization.k8s.io", "ClusterRoleBinding", namespaced=False)


def test_absent_namespace_whitelist_permits_every_kind_and_an_empty_one_none() -> None:
    open_ = ProjectSpec(name="p")
    closed = ProjectSpec(name="p", namespace_resource_whitelist=())
    assert kind_permitted(open_, "", "Secret", namespaced=True)
    assert not kind_permitted(closed, "", "Secret", namespaced=True)
    assert not kind_permitted(open_, "", "Namespace", namespaced=False), "empty cluster whitelist: none"


def test_blacklists_win_and_cluster_entries_may_name_objects() -> None:
    project = ProjectSpec(name="p", cluster_resource_whitelist=(ResourceKind("*", "*"),),
                          cluster_resource_blacklist=(ResourceKind("rbac.authorization.k8s.io", "ClusterRole*",
                                                                   name="admin*"),),
                          namespace_resource_blacklist=(ResourceKind("", "Secret"),))
    assert not kind_permitted(project, "rbac.authorization.k8s.io", "ClusterRole", namespaced=False, name="admin")
    assert kind_permitted(project, "rbac.authorization.k8s.io", "ClusterRole", namespaced=False, name="viewer")
    assert not kind_permitted(project, "", "Secret", namespaced=True)


# -------------------------------------------------------------------- whole apps


class _Scopes:
    namespaced = {"ConfigMap": True, "Secret": True, "Service": True, "Deployment": True,
                  "ClusterRoleBinding": False, "Namespace": False}

    def get(self, api_version: str, kind: str) -> bool | None:
        return self.namespaced.get(kind)


SCOPES = _Scopes()


def _obj(api_version: str, kind: str, name: str, namespace: str = "") -> dict[str, object]:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def test_violations_name_the_object_the_rule_and_the_project() -> None:
    objects = [_obj("apps/v1", "Deployment", "api", "payments"), _obj("v1", "ConfigMap", "settings"),
               _obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "evil"),
               _obj("v1", "Secret", "creds", "payments"), _obj("v1", "Service", "api", "kube-system")]
    found = violations(PAYMENTS, Target(repo=REPO, namespace="payments"), objects, SCOPES.get)
    messages = [v.message for v in found]
    assert messages == [
        "ClusterRoleBinding/evil is not permitted in project payments-team (clusterResourceWhitelist)",
        "Secret/payments/creds is not permitted in project payments-team (namespaceResourceWhitelist)",
        "Service/kube-system/api: namespace kube-system is not a permitted destination of project payments-team "
        f"(server {IN_CLUSTER_SERVER})",
    ]
    assert [v.rule for v in found] == ["clusterResourceWhitelist", "namespaceResourceWhitelist", "destinations"]


def test_an_object_without_a_namespace_counts_in_the_apps_destination() -> None:
    found = violations(PAYMENTS, Target(repo=REPO, namespace="kube-system"),
                       [_obj("v1", "ConfigMap", "a"), _obj("v1", "ConfigMap", "b")], SCOPES.get)
    assert [v.message for v in found] == [
        f"namespace kube-system is not a permitted destination of project payments-team (server {IN_CLUSTER_SERVER})"]


def test_repository_outside_source_repos_is_named_without_its_credentials() -> None:
    (found,) = violations(PAYMENTS, Target(repo="https://bot:s3cret@git.example.com/other.git", namespace="payments"),
                          [])
    assert found.message == ("repository https://git.example.com/other.git is not permitted in project "
                             "payments-team (not in sourceRepos)")
    assert "s3cret" not in found.message


def test_prune_candidates_are_checked_one_by_one() -> None:
    assert object_violation(PAYMENTS, ObjectRef("apps", "Deployment", "payments", "api")) is None
    outside = object_violation(PAYMENTS, ObjectRef("", "ConfigMap", "default", "x"))
    assert outside is not None and outside.rule == "destinations"


def test_default_project_permits_everything_and_unknown_projects_are_reported() -> None:
    default = find_project("default", {})
    assert default is not None
    assert violations(default, Target(repo="https://anywhere/x.git", namespace="kube-system"),
                      [_obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "x")]) == []
    assert find_project("payments-team", {}) is None
    assert unknown_project("api", "payments-team").message == (
        "application api belongs to project payments-team, which does not exist")
    declared = ProjectSpec(name="default", source_repos=("https://only.example.com/*",))
    assert find_project("default", {"default": declared}) is declared


def test_one_verdict_for_a_sync_violations_windows_and_protected_prune_candidates() -> None:
    from dataclasses import replace

    from agent.model import SyncWindow
    from agent.policy import check_sync

    night = SyncWindow(kind="deny", schedule="0 22 * * *", duration="8h", applications=("*",))
    project = replace(PAYMENTS, sync_windows=(night,))
    target = Target(repo=REPO, namespace="payments")
    keep = ObjectRef("", "ConfigMap", "default", "outside")
    fine = ObjectRef("", "ConfigMap", "payments", "old")
    day = 1_772_445_600.0  # 2026-03-02T10:00Z
    verdict = check_sync(project, app="api", project_name="payments-team", target=target,
                         objects=[_obj("apps/v1", "Deployment", "api", "payments")], prune=[keep, fine],
                         is_namespaced=SCOPES.get, now=day, manual=False)
    assert verdict.allowed and verdict.message == "" and verdict.protected == {keep}
    night_verdict = check_sync(project, app="api", project_name="payments-team", target=target, objects=[],
                               now=day + 13 * 3600, manual=False)
    assert not night_verdict.allowed and night_verdict.message.startswith("sync blocked by deny window")
    bad = check_sync(project, app="api", project_name="payments-team", target=target,
                     objects=[_obj("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "evil")],
                     is_namespaced=SCOPES.get, now=day, manual=False)
    assert not bad.allowed and bad.message == (
        "ClusterRoleBinding/evil is not permitted in project payments-team (clusterResourceWhitelist)")
    missing = check_sync(None, app="api", project_name="payments-team", target=target, objects=[], now=day,
                         manual=False)
    assert not missing.allowed and "which does not exist" in missing.message
