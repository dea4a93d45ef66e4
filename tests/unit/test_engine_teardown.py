"""What a removed app with prune_on_delete deletes, and what it keeps."""

from __future__ import annotations

from typing import Any

from agent.engine.teardown import deletion_plan
from agent.model import KubeObject, ObjectRef

APP = "shop"


def obj(kind: str, name: str, *, namespace: str = "ns", owner: str = APP, tracking: str | None = None,
        annotations: dict[str, str] | None = None, api_version: str = "v1") -> KubeObject:
    meta: dict[str, Any] = {"name": name, "labels": {"gitops-agent.io/app": owner}}
    if namespace:
        meta["namespace"] = namespace
    group = api_version.rpartition("/")[0]
    meta["annotations"] = {"gitops-agent.io/tracking-id": tracking or f"{owner}:{group}/{kind}:{namespace}/{name}",
                           **(annotations or {})}
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def live(*objects: KubeObject) -> dict[ObjectRef, KubeObject]:
    return {ObjectRef.of(o): o for o in objects}


def names(candidates: Any) -> list[str]:
    return [c.ref.name for c in candidates]


def test_owned_objects_are_deleted_in_reverse_wave_order() -> None:
    plan = deletion_plan(APP, live(
        obj("ConfigMap", "early", annotations={"argocd.argoproj.io/sync-wave": "-1"}),
        obj("Deployment", "api", api_version="apps/v1", annotations={"gitops-agent.io/sync-wave": "2"}),
        obj("Service", "api"),
    ))
    assert names(plan.delete) == ["api", "api", "early"]
    assert [c.ref.kind for c in plan.delete] == ["Deployment", "Service", "ConfigMap"]
    assert plan.kept == ()


def test_delete_false_and_prune_false_are_kept_in_either_spelling() -> None:
    plan = deletion_plan(APP, live(
        obj("ConfigMap", "ours-delete", annotations={"gitops-agent.io/sync-options": "Delete=false"}),
        obj("ConfigMap", "argo-delete", annotations={"argocd.argoproj.io/sync-options": "PruneLast=true,Delete=false"}),
        obj("ConfigMap", "prune", annotations={"argocd.argoproj.io/sync-options": "Prune=false"}),
        obj("ConfigMap", "plain"),
    ))
    assert names(plan.delete) == ["plain"]
    kept = {c.ref.name: c.blocked for c in plan.kept}
    assert kept == {"argo-delete": "annotated Delete=false", "ours-delete": "annotated Delete=false",
                    "prune": "annotated Prune=false"}


def test_an_object_whose_tracking_id_names_another_app_is_never_deleted() -> None:
    copied = obj("ConfigMap", "copied", tracking="other:/ConfigMap:ns/copied")
    plan = deletion_plan(APP, live(copied))
    assert plan.delete == ()
    assert plan.kept[0].blocked.startswith("not owned by shop")


def test_a_namespace_holding_a_kept_object_is_kept() -> None:
    plan = deletion_plan(APP, live(
        obj("Namespace", "team", namespace=""),
        obj("Namespace", "empty", namespace=""),
        obj("ConfigMap", "keeper", namespace="team", annotations={"gitops-agent.io/sync-options": "Delete=false"}),
        obj("ConfigMap", "other", namespace="team"),
    ))
    assert sorted(names(plan.delete)) == ["empty", "other"]
    assert {c.ref.name: c.blocked for c in plan.kept} == {"keeper": "annotated Delete=false",
                                                          "team": "holds objects that are kept"}


def test_prune_last_objects_go_last() -> None:
    plan = deletion_plan(APP, live(
        obj("ConfigMap", "last", annotations={"gitops-agent.io/sync-options": "PruneLast=true"}),
        obj("ConfigMap", "first"),
    ))
    assert names(plan.delete) == ["first", "last"]
