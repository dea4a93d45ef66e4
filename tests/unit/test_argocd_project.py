"""Argo CD AppProject → ProjectSpec: the seed's project, Argo CD's documented fields, and refusals."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from agent.argocd import InvalidDefinition, Unsupported, parse_app_project
from agent.model import Destination, ProjectRole, ResourceKind, SyncWindow
from tests.unit.argocd_seed import SEED_APP_PROJECT

FILE = "argocd/projects/payments-project.yaml"


def seed() -> dict[str, Any]:
    return yaml.safe_load(SEED_APP_PROJECT)  # type: ignore[no-any-return]


def test_the_seed_project_is_carried_whole() -> None:
    project = parse_app_project(seed(), file=FILE)
    assert (project.name, project.description, project.origin) == ("payments-team", "Payments Team Services", FILE)
    assert project.source_repos == ("https://github.com/payments-engine/gitops.git",)
    assert project.destinations == (Destination(server="https://kubernetes.default.svc", namespace="payments"),
                                    Destination(server="https://kubernetes.default.svc", namespace="payments-*"))
    assert project.cluster_resource_whitelist == (ResourceKind("", "Namespace"),)
    assert project.namespace_resource_whitelist == (ResourceKind("apps", "Deployment"), ResourceKind("", "Service"),
                                                    ResourceKind("", "ConfigMap"))
    assert project.roles == (
        ProjectRole("developer", "Developers can view and sync",
                    ("p, proj:payments-team:developer, applications, get, *, allow",
                     "p, proj:payments-team:developer, applications, sync, *, allow")),
        ProjectRole("admin", "Full access", ("p, proj:payments-team:admin, applications, *, *, allow",)),
    )


def test_no_namespaced_whitelist_allows_every_namespaced_kind_as_in_argo_cd() -> None:
    obj = seed()
    del obj["spec"]["namespaceResourceWhitelist"]
    assert parse_app_project(obj, file=FILE).namespace_resource_whitelist is None
    obj["spec"]["namespaceResourceWhitelist"] = []
    assert parse_app_project(obj, file=FILE).namespace_resource_whitelist is None


def test_sync_windows_and_blacklists() -> None:
    obj = seed()
    obj["spec"]["syncWindows"] = [{"kind": "deny", "schedule": "0 22 * * *", "duration": "1h",
                                   "applications": ["*-prod"], "manualSync": True, "timeZone": "Africa/Johannesburg",
                                   "description": "release freeze"}]
    obj["spec"]["namespaceResourceBlacklist"] = [{"group": "", "kind": "ResourceQuota"}]
    obj["spec"]["clusterResourceBlacklist"] = [{"group": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                "name": "cluster-admin"}]
    project = parse_app_project(obj, file=FILE)
    assert project.sync_windows == (SyncWindow(kind="deny", schedule="0 22 * * *", duration="1h",
                                               applications=("*-prod",), manual_sync=True,
                                               time_zone="Africa/Johannesburg"),)
    assert project.namespace_resource_blacklist == (ResourceKind("", "ResourceQuota"),)
    assert project.cluster_resource_blacklist == (ResourceKind("rbac.authorization.k8s.io", "ClusterRole",
                                                               "cluster-admin"),)


@pytest.mark.parametrize(("key", "value"), [
    ("signatureKeys", [{"keyID": "4AEE18F83AFDEB23"}]),
    ("sourceNamespaces", ["team-a"]),
    ("destinationServiceAccounts", [{"server": "https://kubernetes.default.svc", "defaultServiceAccount": "x"}]),
    ("orphanedResources", {"warn": True}),
    ("permitOnlyProjectScopedClusters", True),
    ("clusterResourceWhiteList", [{"group": "", "kind": "Namespace"}]),  # a misspelling is not a wider project
])
def test_restrictions_it_cannot_carry_are_refused(key: str, value: Any) -> None:
    obj = seed()
    obj["spec"][key] = value
    with pytest.raises(Unsupported, match=rf"^{FILE}: AppProject payments-team: spec.{key}"):
        parse_app_project(obj, file=FILE)


def test_a_project_window_with_a_bad_kind_is_invalid() -> None:
    obj = seed()
    obj["spec"]["syncWindows"] = [{"kind": "maybe", "schedule": "* * * * *", "duration": "1h"}]
    with pytest.raises(InvalidDefinition, match=r"spec.syncWindows\[0\].kind: must be allow or deny"):
        parse_app_project(obj, file=FILE)
