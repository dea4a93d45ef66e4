"""Argo CD Application → AppSpec: the seed's Application, Argo CD's documented fields, and refusals."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from agent.argocd import InvalidDefinition, Unsupported, parse_application
from agent.argocd.durations import parse_go_duration
from agent.model import IgnoreDifference, KustomizeSpec, RetryPolicy, SyncPolicy
from tests.unit.argocd_seed import SEED_APPLICATION

FILE = "argocd/applications/payment-service-app.yaml"


def seed() -> dict[str, Any]:
    return yaml.safe_load(SEED_APPLICATION)  # type: ignore[no-any-return]


def minimal(**spec: Any) -> dict[str, Any]:
    body = {"source": {"repoURL": "https://git.example.com/r.git"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "shop"}}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "shop"},
            "spec": {**body, **spec}}


def test_the_seed_application_becomes_the_production_app() -> None:
    app = parse_application(seed(), file=FILE, parent="root")
    assert (app.name, app.parent, app.project, app.origin) == ("payment-service", "root", "payments-project", FILE)
    assert (app.repo, app.revision, app.path, app.namespace) == (
        "https://github.com/payments-engine/gitops.git", "main", "apps/payment-service/overlays/production",
        "payments")
    assert app.kustomize == KustomizeSpec(name_prefix="prod-",
                                          common_labels=(("environment", "production"), ("team", "payments")))
    assert app.sync_policy == SyncPolicy(
        automated=True, prune=True, self_heal=True, allow_empty=False,
        options=frozenset({"CreateNamespace=true", "PruneLast=true"}),
        retry=RetryPolicy(limit=5, backoff_duration=5.0, backoff_factor=2.0, backoff_max_duration=180.0))
    assert app.ignore_differences == (IgnoreDifference(kind="Deployment", group="apps",
                                                       json_pointers=("/spec/replicas",)),)
    assert app.prune_on_delete  # resources-finalizer.argocd.argoproj.io


def test_defaults_follow_argo_cd() -> None:
    app = parse_application(minimal(), file="a.yaml")
    assert (app.revision, app.path, app.project, app.prune_on_delete, app.parent) == ("HEAD", ".", "default",
                                                                                       False, "")
    assert app.sync_policy == SyncPolicy(automated=False)  # no syncPolicy: sync by hand only
    assert app.sync_policy.retry.limit == 0


def test_automated_without_fields_syncs_without_pruning_or_self_heal() -> None:
    policy = parse_application(minimal(syncPolicy={"automated": {}}), file="a.yaml").sync_policy
    assert (policy.automated, policy.prune, policy.self_heal, policy.allow_empty) == (True, False, False, False)
    off = parse_application(minimal(syncPolicy={"automated": {"enabled": False, "prune": True}}), file="a.yaml")
    assert not off.sync_policy.automated


def test_the_in_cluster_destination_by_name_and_an_empty_namespace() -> None:
    app = parse_application(minimal(destination={"name": "in-cluster"}), file="a.yaml")
    assert (app.namespace, app.cluster) == ("default", "in-cluster")


@pytest.mark.parametrize(("destination", "cluster"), [
    ({"server": "https://kubernetes.default.svc/"}, "in-cluster"),
    ({"server": "https://edge.example.com:6443/"}, "https://edge.example.com:6443"),
    ({"name": "edge"}, "edge"),
])
def test_a_destination_names_a_cluster_by_server_or_name(destination: dict[str, str], cluster: str) -> None:
    """Whether the agent knows the cluster is asked when the app reconciles: a condition, not a refusal."""
    app = parse_application(minimal(destination={**destination, "namespace": "shop"}), file="a.yaml")
    assert (app.cluster, app.namespace) == (cluster, "shop")


def test_the_applications_labels_and_annotations_are_the_apps() -> None:
    """Notification subscriptions select on them."""
    obj = minimal()
    obj["metadata"]["labels"] = {"team": "payments"}
    obj["metadata"]["annotations"] = {"notifications.argoproj.io/subscribe.on-sync-failed.slack": "payments-alerts"}
    app = parse_application(obj, file="a.yaml")
    assert app.labels == (("team", "payments"),)
    assert app.annotations == (("notifications.argoproj.io/subscribe.on-sync-failed.slack", "payments-alerts"),)


def test_retry_backoff_reads_durations_as_argo_cd_does() -> None:
    retry = {"limit": 3, "backoff": {"duration": "10", "factor": 3, "maxDuration": "1h30m"}}
    policy = parse_application(minimal(syncPolicy={"retry": retry}), file="a.yaml").sync_policy
    assert policy.retry == RetryPolicy(limit=3, backoff_duration=10.0, backoff_factor=3.0, backoff_max_duration=5400.0)


@pytest.mark.parametrize(("text", "seconds"), [("5", 5.0), ("5s", 5.0), ("3m", 180.0), ("1h30m", 5400.0),
                                               ("1.5h", 5400.0), ("300ms", 0.3), ("0", 0.0)])
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "-1s", "s", "1m 5s"])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


def test_argo_cd_kustomize_and_directory_options() -> None:
    kustomize = {"namePrefix": "prod-", "nameSuffix": "-v1", "namespace": "payments",
                 "commonAnnotations": {"owner": "payments"}, "labelWithoutSelector": True,
                 "images": ["quay.io/argoprojlabs/argocd-e2e-container:0.2", "my-app=gcr.io/my-repo/my-app:0.1"],
                 "replicas": [{"name": "kustomize-guestbook-ui", "count": 4}, {"name": "api", "count": "2"}],
                 "forceCommonLabels": False}
    app = parse_application(minimal(source={"repoURL": "r", "path": "guestbook", "kustomize": kustomize}),
                            file="a.yaml")
    assert app.kustomize == KustomizeSpec(
        name_prefix="prod-", name_suffix="-v1", namespace="payments", common_annotations=(("owner", "payments"),),
        label_without_selector=True, images=("quay.io/argoprojlabs/argocd-e2e-container:0.2",
                                             "my-app=gcr.io/my-repo/my-app:0.1"),
        replicas=(("kustomize-guestbook-ui", 4), ("api", 2)))
    plain = parse_application(minimal(source={"repoURL": "r", "directory": {
        "recurse": True, "include": "*.yaml", "exclude": "{config.yaml,env-use2/*}"}}), file="a.yaml")
    assert (plain.directory.recurse, plain.directory.include, plain.directory.exclude) == (
        True, ("*.yaml",), ("{config.yaml,env-use2/*}",))


def test_sync_options_spelled_as_their_default_are_accepted() -> None:
    app = parse_application(minimal(syncPolicy={"syncOptions": ["CreateNamespace=false", "Validate=true",
                                                                "ServerSideApply=true"]}), file="a.yaml")
    assert app.sync_policy.options == frozenset({"ServerSideApply=true"})


def test_argo_cd_sync_options_and_ignore_rules_carry_over() -> None:
    app = parse_application(minimal(
        syncPolicy={"syncOptions": ["PrunePropagationPolicy=foreground", "Replace=true"]},
        ignoreDifferences=[{"group": "*", "kind": "*", "managedFieldsManagers": ["kube-controller-manager"]},
                           {"kind": "ConfigMap", "jqPathExpressions": ['.data["config.yaml"]']}]), file="a.yaml")
    assert app.sync_policy.options == frozenset({"PrunePropagationPolicy=foreground", "Replace=true"})
    assert app.ignore_differences == (
        IgnoreDifference(kind="*", group="*", managed_fields_managers=("kube-controller-manager",)),
        IgnoreDifference(kind="ConfigMap", jq_path_expressions=('.data["config.yaml"]',)),
    )


def test_background_cascading_finalizer_also_deletes_objects() -> None:
    obj = minimal()
    obj["metadata"]["finalizers"] = ["resources-finalizer.argocd.argoproj.io/background"]
    assert parse_application(obj, file="a.yaml").prune_on_delete


def with_change(path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(seed())
    *parents, last = path.split(".")
    target = obj
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value
    return obj


@pytest.mark.parametrize(("path", "value", "field"), [
    ("spec.source.helm", {"valueFiles": ["values-prod.yaml"]}, "spec.source.helm"),
    ("spec.source.chart", "nginx", "spec.source.chart"),
    ("spec.source.plugin", {"name": "cmp"}, "spec.source.plugin"),
    ("spec.sources", [{"repoURL": "r", "path": "a"}], "spec.sources"),
    ("spec.syncPolicy.syncOptions", ["Prune=confirm"], "spec.syncPolicy.syncOptions[0]"),
    ("spec.syncPolicy.managedNamespaceMetadata", {"labels": {"a": "b"}}, "spec.syncPolicy.managedNamespaceMetadata"),
    ("spec.syncPolicy.retry.limit", -1, "spec.syncPolicy.retry.limit"),
    ("spec.source.kustomize.patches", [{"patch": "x"}], "spec.source.kustomize.patches"),
    ("spec.revisionHistoryLimit", 3, "spec.revisionHistoryLimit"),
    ("spec.revisionHistoryLimit", 0, "spec.revisionHistoryLimit"),  # 0 means "keep none" to Argo CD
    ("spec.syncPolicy.automated.selfheal", True, "spec.syncPolicy.automated.selfheal"),  # a typo is not ignored
    ("metadata.finalizers", ["post-delete-finalizer.argocd.argoproj.io"], "metadata.finalizers"),
])
def test_what_argo_cd_would_honour_and_we_do_not_is_refused_by_name(path: str, value: Any, field: str) -> None:
    with pytest.raises(Unsupported) as caught:
        parse_application(with_change(path, value), file=FILE)
    assert caught.value.name == "payment-service"
    assert str(caught.value).startswith(f"{FILE}: Application payment-service: {field}")


def test_the_unsupported_message_reads_well() -> None:
    with pytest.raises(Unsupported, match=r"^argocd/applications/payment-service-app.yaml: Application "
                                          r"payment-service: spec.source.helm \(Helm\) is not supported$"):
        parse_application(with_change("spec.source.helm", {"values": "a: b"}), file=FILE)


@pytest.mark.parametrize(("path", "value", "problem"), [
    ("metadata.name", "Payment_Service", "metadata.name: 'Payment_Service' must be a DNS label"),
    ("spec.source.repoURL", "", "spec.source.repoURL: must not be empty"),
    ("spec.source.path", "../secrets", "spec.source.path: '../secrets' must be relative"),
    ("spec.syncPolicy.retry.backoff.duration", "soon", "spec.syncPolicy.retry.backoff.duration: 'soon' is not"),
    ("spec.syncPolicy.automated.prune", "yes", "spec.syncPolicy.automated.prune: must be true or false"),
    ("spec.destination.name", "in-cluster", "spec.destination.server: give server or name, not both"),
    ("spec.destination.server", "10.0.0.1:6443", "spec.destination.server: '10.0.0.1:6443' is not an API server"),
    ("spec.source.kustomize.images", ["nginx"], "spec.source.kustomize.images[0]: 'nginx' changes nothing"),
    ("spec.ignoreDifferences", [{"kind": "ConfigMap", "jqPathExpressions": [".data["]}],
     "spec.ignoreDifferences[0].jqPathExpressions[0]: '.data[' is not a jq path expression"),
])
def test_malformed_fields_are_invalid_naming_file_object_and_field(path: str, value: Any, problem: str) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        parse_application(with_change(path, value), file=FILE)
    assert not isinstance(caught.value, Unsupported)
    assert problem in str(caught.value)
    assert str(caught.value).startswith(f"{FILE}: Application ")


def test_an_application_without_a_name_is_invalid_and_unnamed() -> None:
    obj = minimal()
    del obj["metadata"]["name"]
    with pytest.raises(InvalidDefinition, match=r"^a.yaml: Application: metadata.name: is required") as caught:
        parse_application(obj, file="a.yaml")
    assert caught.value.name == ""
