import pytest

from agent.engine.desired import desired_objects, tracking_id
from agent.errors import RenderError
from agent.model import ObjectRef
from agent.render import Manifest


def manifest(kind: str, name: str, api_version: str = "v1", namespace: str | None = None) -> Manifest:
    meta: dict[str, object] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return Manifest(obj={"apiVersion": api_version, "kind": kind, "metadata": meta}, source="f.yaml", index=0)


def namespaced(api_version: str, kind: str) -> bool | None:
    return {"Namespace": False, "ClusterRole": False, "ConfigMap": True, "Deployment": True}.get(kind)


def test_objects_are_placed_and_marked_as_ours() -> None:
    manifests = [
        manifest("ConfigMap", "cm"),
        manifest("ConfigMap", "other", namespace="elsewhere"),
        manifest("ClusterRole", "role", "rbac.authorization.k8s.io/v1", namespace="ignored"),
    ]
    cm, other, role = desired_objects("shop", manifests, namespace="payments", is_namespaced=namespaced)
    assert cm["metadata"]["namespace"] == "payments"
    assert other["metadata"]["namespace"] == "elsewhere"
    assert "namespace" not in role["metadata"]
    assert cm["metadata"]["labels"] == {"gitops-agent.io/app": "shop"}
    assert cm["metadata"]["annotations"]["gitops-agent.io/tracking-id"] == "shop:/ConfigMap:payments/cm"
    assert role["metadata"]["annotations"]["gitops-agent.io/tracking-id"] == (
        "shop:rbac.authorization.k8s.io/ClusterRole:/role"
    )
    assert "labels" not in manifests[0].obj["metadata"], "the rendered manifest must not be modified"


def test_existing_labels_and_annotations_are_kept() -> None:
    m = manifest("ConfigMap", "cm")
    m.obj["metadata"]["labels"] = {"team": "payments"}
    (cm,) = desired_objects("shop", [m], namespace="p", is_namespaced=namespaced)
    assert cm["metadata"]["labels"] == {"team": "payments", "gitops-agent.io/app": "shop"}


def test_unknown_kind_is_a_render_error() -> None:
    with pytest.raises(RenderError, match=r"the cluster does not know Widget in example\.com/v1"):
        desired_objects("a", [manifest("Widget", "w", "example.com/v1")], namespace="p", is_namespaced=namespaced)


def test_the_same_object_twice_is_an_error() -> None:
    with pytest.raises(RenderError, match="ConfigMap/p/cm: declared twice"):
        desired_objects(
            "a",
            [manifest("ConfigMap", "cm"), manifest("ConfigMap", "cm", namespace="p")],
            namespace="p",
            is_namespaced=namespaced,
        )


def test_tracking_id_format() -> None:
    assert tracking_id("app", ObjectRef("apps", "Deployment", "ns", "api")) == "app:apps/Deployment:ns/api"
