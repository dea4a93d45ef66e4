"""Diffing desired against live: normalization, ignored differences, and Secrets never shown."""

from agent.engine.diff import differs, normalize, redact_secrets, unified_diff
from agent.engine.ignore import remove_managed_fields
from agent.model import IgnoreDifference, ObjectRef


def test_normalize_drops_server_fields_and_folds_string_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "uid": "x", "resourceVersion": "1",
                                                                 "generation": 3, "managedFields": []},
              "stringData": {"password": "hunter2"}, "status": {}}
    assert normalize(secret) == {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
                                 "data": {"password": "aHVudGVyMg=="}}


def test_ignore_differences_by_pointer_and_by_manager() -> None:
    desired = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"},
               "spec": {"replicas": 2, "template": {"metadata": {"annotations": {"a": "1"}}}}}
    live = {**desired, "spec": {"replicas": 5, "template": {"metadata": {"annotations": {"a": "1", "hpa": "x"}}}}}
    live["metadata"] = {**desired["metadata"], "managedFields": [{"manager": "hpa", "fieldsV1": {
        "f:spec": {"f:template": {"f:metadata": {"f:annotations": {"f:hpa": {}}}}}}}]}
    assert differs(desired, live, [])
    by_pointer = IgnoreDifference(kind="Deployment", group="apps", json_pointers=("/spec/replicas",))
    assert differs(desired, live, [by_pointer])
    by_manager = IgnoreDifference(kind="Deployment", group="apps", managed_fields_managers=("hpa",))
    assert not differs(desired, live, [by_pointer, by_manager])
    other_kind = IgnoreDifference(kind="StatefulSet", group="apps", json_pointers=("/spec/replicas",))
    assert differs(desired, live, [other_kind, by_manager])


def test_remove_managed_fields_follows_list_keys() -> None:
    obj = {"spec": {"containers": [{"name": "a", "image": "x", "env": []}, {"name": "b", "image": "y"}]}}
    remove_managed_fields(obj, {"f:spec": {"f:containers": {'k:{"name":"a"}': {"f:image": {}}}}})
    assert obj == {"spec": {"containers": [{"name": "a", "env": []}, {"name": "b", "image": "y"}]}}


def test_secret_values_never_appear_in_diffs() -> None:
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "ns"},
            "data": {"user": "YWRtaW4=", "password": "b2xk"}}
    desired = {**live, "data": {"user": "YWRtaW4=", "password": "bmV3"}}
    diff = unified_diff(ObjectRef("", "Secret", "ns", "s"), live, desired)
    assert "b2xk" not in diff and "bmV3" not in diff and "YWRtaW4=" not in diff
    assert "-  password: <redacted value 2>" in diff and "+  password: <redacted value 3>" in diff
    assert "user: <redacted value 1>" in diff and "-  user" not in diff
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "ns"},
                  "data": {"k": "visible"}}
    (plain,) = redact_secrets(config_map)
    assert plain is not None and plain["data"] == {"k": "visible"}
