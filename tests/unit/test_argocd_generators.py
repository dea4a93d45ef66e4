"""ApplicationSet generators against the examples of Argo CD's documentation (Generators-List, -Git,
-Matrix, -Merge, Template, GoTemplate), rewritten as inputs and the outputs Argo CD documents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.argocd import (
    ApplicationSetSpec,
    Generated,
    GenerationFailed,
    GitTree,
    InvalidDefinition,
    NeedsTrees,
    TreeRequest,
    Unsupported,
    generate,
    parse_application_set,
)
from agent.argocd.params import GitTree as ParamsGitTree
from agent.argocd.params import generate_params
from agent.argocd.patterns import git_pathspec_match, go_path_match
from agent.argocd.templates import Syntax

ARGO = "https://github.com/argoproj/argo-cd.git"
IN_CLUSTER = "https://kubernetes.default.svc"
FILE = "argocd/applicationsets/guestbook.yaml"


def appset(spec: dict[str, Any], *, name: str = "guestbook", annotations: dict[str, str] | None = None
           ) -> ApplicationSetSpec:
    meta: dict[str, Any] = {"name": name, "namespace": "argocd"}
    if annotations:
        meta["annotations"] = annotations
    return parse_application_set({"apiVersion": "argoproj.io/v1alpha1", "kind": "ApplicationSet",
                                  "metadata": meta, "spec": spec}, file=FILE, parent="root")


def template(name: str, path: str, *, namespace: str = "guestbook", server: str = IN_CLUSTER) -> dict[str, Any]:
    return {"metadata": {"name": name},
            "spec": {"project": "my-project", "source": {"repoURL": ARGO, "targetRevision": "HEAD", "path": path},
                     "destination": {"server": server, "namespace": namespace}}}


def generated(spec: ApplicationSetSpec, trees: dict[tuple[str, str], GitTree] | None = None) -> Generated:
    outcome = generate(spec, trees or {})
    assert isinstance(outcome, Generated), outcome
    return outcome


def summary(outcome: Generated) -> list[tuple[str, str, str]]:
    return sorted((app.name, app.path, app.namespace) for app in outcome.apps)


def tree(*files: str, contents: dict[str, str] | None = None) -> dict[tuple[str, str], GitTree]:
    encoded = {path: text.encode() for path, text in (contents or {}).items()}
    return {(ARGO, "HEAD"): GitTree(files=tuple(files) + tuple(encoded), contents=encoded)}


# ---------------------------------------------------------------------------------------------- list


def test_list_generator_guestbook_example() -> None:
    spec = appset({"goTemplate": True, "goTemplateOptions": ["missingkey=error"],
                   "generators": [{"list": {"elements": [{"cluster": "engineering-dev", "url": IN_CLUSTER}]}}],
                   "template": template("{{.cluster}}-guestbook",
                                        "applicationset/examples/list-generator/guestbook/{{.cluster}}")})
    (app,) = generated(spec).apps
    assert (app.name, app.path, app.namespace, app.project) == (
        "engineering-dev-guestbook", "applicationset/examples/list-generator/guestbook/engineering-dev", "guestbook",
        "my-project")
    assert (app.parent, app.origin) == ("root", f"{FILE}: ApplicationSet guestbook")
    assert app.prune_on_delete  # generated apps get the resources finalizer unless the set preserves


def test_list_generator_values_in_the_legacy_syntax() -> None:
    spec = appset({"generators": [{"list": {"elements": [
        {"cluster": "engineering-dev", "url": IN_CLUSTER, "values": {"additional": "value"}},
        {"cluster": "staging", "url": IN_CLUSTER}]}}],
        "template": template("{{cluster}}-guestbook", "guestbook/{{values.additional}}")})
    assert summary(generated(spec)) == [("engineering-dev-guestbook", "guestbook/value", "guestbook"),
                                        ("staging-guestbook", "guestbook/{{values.additional}}", "guestbook")]


def test_list_elements_must_be_strings_without_go_templates() -> None:
    spec = appset({"generators": [{"list": {"elements": [{"cluster": "dev", "replicas": 3}]}}],
                   "template": template("{{cluster}}", "x")})
    outcome = generate(spec, {})
    assert isinstance(outcome, GenerationFailed)
    assert "spec.generators[0]" in outcome.message and "elements[0].replicas" in outcome.message


def test_a_generators_own_template_overrides_the_sets() -> None:
    path = "applicationset/examples/template-override/{{cluster}}-override"
    override = {"metadata": {}, "spec": {"project": "default",
                                         "source": {"targetRevision": "HEAD", "repoURL": ARGO, "path": path},
                                         "destination": {}}}
    spec = appset({"generators": [{"list": {"elements": [{"cluster": "engineering-dev", "url": IN_CLUSTER}],
                                            "template": override}}],
                   "template": template("{{cluster}}-guestbook", "applicationset/examples/template-override/default",
                                        server="{{url}}")})
    (app,) = generated(spec).apps
    assert (app.name, app.path, app.project) == (
        "engineering-dev-guestbook", "applicationset/examples/template-override/engineering-dev-override", "default")


# ---------------------------------------------------------------------------------------------- git directories

ADDONS = "applicationset/examples/git-generator-directory/cluster-addons"
ADDON_FILES = (f"{ADDONS}/argo-workflows/kustomization.yaml", f"{ADDONS}/argo-workflows/namespace-install.yaml",
               f"{ADDONS}/prometheus-operator/Chart.yaml", f"{ADDONS}/prometheus-operator/values.yaml",
               f"{ADDONS}/exclude-helm-guestbook/Chart.yaml", ".github/workflows/ci.yaml", "README.md")


def directories_set(directories: list[dict[str, Any]], **extra: Any) -> ApplicationSetSpec:
    return appset({"goTemplate": True, "goTemplateOptions": ["missingkey=error"],
                   "generators": [{"git": {"repoURL": ARGO, "revision": "HEAD", "directories": directories, **extra}}],
                   "template": template("{{.path.basename}}", "{{.path.path}}", namespace="{{.path.basename}}")})


def test_git_directories_cluster_addons_example() -> None:
    spec = directories_set([{"path": f"{ADDONS}/*"}, {"path": f"{ADDONS}/exclude-helm-guestbook", "exclude": True}])
    assert summary(generated(spec, tree(*ADDON_FILES))) == [
        ("argo-workflows", f"{ADDONS}/argo-workflows", "argo-workflows"),
        ("prometheus-operator", f"{ADDONS}/prometheus-operator", "prometheus-operator")]


def test_git_directories_asks_for_the_listing_first() -> None:
    outcome = generate(directories_set([{"path": f"{ADDONS}/*"}]), {})
    assert outcome == NeedsTrees((TreeRequest(ARGO, "HEAD"),))


@pytest.mark.parametrize(("directories", "expected"), [
    ([{"path": "d/*"}, {"path": "d/f", "exclude": True}, {"path": "d/g", "exclude": True}], ["e"]),
    ([{"path": "d/e"}, {"path": "d/*", "exclude": True}], []),  # exclusion wins whatever the order
    ([{"path": "d/*"}, {"path": "d/[fg]", "exclude": True}], ["e"]),
    ([{"path": "*"}, {"path": "donotdeploy", "exclude": True}], ["d", "keep"]),  # the root, hidden ones skipped
])
def test_git_directories_include_and_exclude(directories: list[dict[str, Any]], expected: list[str]) -> None:
    files = ("d/e/a.yaml", "d/f/a.yaml", "d/g/a.yaml", "donotdeploy/a.yaml", "keep/a.yaml", ".hidden/x/a.yaml")
    spec = directories_set(directories)
    if not expected:
        outcome = generate(spec, tree(*files))
        assert outcome == Generated()
        return
    assert sorted(app.name for app in generated(spec, tree(*files)).apps) == expected


def test_git_directories_values_are_rendered_with_the_paths_parameters() -> None:
    spec = appset({"goTemplate": True, "generators": [{"git": {
        "repoURL": ARGO, "revision": "HEAD", "directories": [{"path": "*"}],
        "values": {"cluster": "{{.path.basename}}"}}}],
        "template": template("{{.path.basename}}", "{{.path.path}}", namespace="{{.values.cluster}}")})
    assert summary(generated(spec, tree("team-a/x.yaml"))) == [("team-a", "team-a", "team-a")]


def test_legacy_directory_parameters_and_path_segments() -> None:
    spec = appset({"generators": [{"git": {"repoURL": ARGO, "directories": [{"path": "apps/*/overlays/prod"}]}}],
                   "template": template("{{path[1]}}-{{path.basename}}", "{{path}}",
                                        namespace="{{path.basenameNormalized}}")})
    assert summary(generated(spec, tree("apps/ledger/overlays/prod/k.yaml", "apps/fx/overlays/prod/k.yaml"))) == [
        ("fx-prod", "apps/fx/overlays/prod", "prod"), ("ledger-prod", "apps/ledger/overlays/prod", "prod")]
    # A directory name that is no DNS label gives an app no valid name: nothing is decided on it.
    outcome = generate(spec, tree("apps/payment_svc/overlays/prod/k.yaml"))
    assert isinstance(outcome, GenerationFailed) and "'payment_svc-prod'" in outcome.message


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("apps/*", "apps/a", True), ("apps/*", "apps/a/b", False), ("*", "a", True), ("a?c", "abc", True),
    ("a?c", "a/c", False), ("[a-c]x", "bx", True), ("[^a-c]x", "dx", True), ("[^a-c]x", "ax", False),
    ("a\\*", "a*", True), ("a\\*", "ab", False),
])
def test_directory_patterns_are_go_path_match(pattern: str, path: str, matches: bool) -> None:
    assert go_path_match(pattern, path) is matches


def test_a_malformed_directory_pattern_fails_the_generation() -> None:
    outcome = generate(directories_set([{"path": "apps/[a"}]), tree("apps/a/x.yaml"))
    assert isinstance(outcome, GenerationFailed) and "directories[0].path" in outcome.message


# ---------------------------------------------------------------------------------------------- git files

CONFIG_DEV = json.dumps({"aws_account": "123456", "asset_id": "11223344",
                         "cluster": {"owner": "cluster-admin@company.com", "name": "engineering-dev",
                                     "address": "https://1.2.3.4"}})
CONFIG_PROD = CONFIG_DEV.replace("engineering-dev", "engineering-prod")
CONFIGS = {"cluster-config/engineering/dev/config.json": CONFIG_DEV,
           "cluster-config/engineering/prod/config.json": CONFIG_PROD}


def files_set(files: list[dict[str, Any]], *, go: bool = False, server: str = IN_CLUSTER,
              **extra: Any) -> ApplicationSetSpec:
    name = "{{.cluster.name}}-guestbook" if go else "{{cluster.name}}-guestbook"
    return appset({"goTemplate": go, "generators": [{"git": {"repoURL": ARGO, "revision": "HEAD", "files": files,
                                                             **extra}}],
                   "template": template(name, "applicationset/examples/git-generator-files-discovery/apps/guestbook",
                                        server=server)})


def test_git_files_parameters_are_flattened_as_documented() -> None:
    generator = files_set([{"path": "cluster-config/**/config.json"}]).generators[0]
    params = generate_params(generator, syntax=Syntax(), trees={(ARGO, "HEAD"): ParamsGitTree(
        files=tuple(CONFIGS), contents={k: v.encode() for k, v in CONFIGS.items()})})
    assert params[0] == {
        "aws_account": "123456", "asset_id": "11223344", "cluster.owner": "cluster-admin@company.com",
        "cluster.name": "engineering-dev", "cluster.address": "https://1.2.3.4",
        "path": "cluster-config/engineering/dev", "path.basename": "dev", "path.basenameNormalized": "dev",
        "path.filename": "config.json", "path.filenameNormalized": "config.json",
        "path[0]": "cluster-config", "path[1]": "engineering", "path[2]": "dev"}


def test_git_files_example_deploys_each_app_to_the_cluster_its_file_names() -> None:
    outcome = generated(files_set([{"path": "cluster-config/**/config.json"}], server="{{cluster.address}}"),
                        tree(contents=CONFIGS))
    assert outcome.refused == ()
    assert sorted((app.name, app.cluster) for app in outcome.apps) == [
        ("engineering-dev-guestbook", "https://1.2.3.4"), ("engineering-prod-guestbook", "https://1.2.3.4")]


def test_git_files_reads_listing_then_contents() -> None:
    spec = files_set([{"path": "cluster-config/**/config.json"}], go=True)
    assert generate(spec, {}) == NeedsTrees((TreeRequest(ARGO, "HEAD"),))
    listing = {(ARGO, "HEAD"): GitTree(files=(*CONFIGS, "apps/guestbook/kustomization.yaml"))}
    assert generate(spec, listing) == NeedsTrees((TreeRequest(ARGO, "HEAD", tuple(sorted(CONFIGS))),))
    assert sorted(app.name for app in generated(spec, tree(contents=CONFIGS)).apps) == [
        "engineering-dev-guestbook", "engineering-prod-guestbook"]


def test_git_files_exclude() -> None:
    spec = files_set([{"path": "cluster-config/**/config.json"},
                      {"path": "cluster-config/*/dev/config.json", "exclude": True}], go=True)
    assert [app.name for app in generated(spec, tree(contents=CONFIGS)).apps] == ["engineering-prod-guestbook"]


def test_git_files_values_from_path_segments() -> None:
    spec = appset({"goTemplate": True, "generators": [{"git": {
        "repoURL": ARGO, "revision": "HEAD", "files": [{"path": "cluster-config/**/config.json"}],
        "values": {"base_dir": "{{index .path.segments 0}}/{{index .path.segments 1}}"}}}],
        "template": template("{{.cluster.name}}-guestbook", "{{.values.base_dir}}/apps/guestbook")})
    assert {app.path for app in generated(spec, tree(contents=CONFIGS)).apps} == {
        "cluster-config/engineering/apps/guestbook"}


def test_a_file_of_several_objects_and_an_unparsable_file() -> None:
    spec = files_set([{"path": "clusters/*.yaml"}], go=True)
    two = "- cluster: {name: a}\n- cluster: {name: b}\n"
    assert sorted(app.name for app in generated(spec, tree(contents={"clusters/all.yaml": two})).apps) == [
        "a-guestbook", "b-guestbook"]
    outcome = generate(spec, tree(contents={"clusters/all.yaml": "cluster: [unclosed\n"}))
    assert isinstance(outcome, GenerationFailed)
    assert "clusters/all.yaml: not valid JSON or YAML" in outcome.message


@pytest.mark.parametrize(("pattern", "path", "matches"), [
    ("cluster-config/**/config.json", "cluster-config/engineering/dev/config.json", True),
    ("some-path/*.yaml", "some-path/deep/er/a.yaml", True),  # git's default globbing is greedy
    ("apps", "apps/a/b.json", True), ("apps", "apps2/x", False), ("a.json", "a.json", True),
])
def test_file_patterns_are_git_pathspecs(pattern: str, path: str, matches: bool) -> None:
    assert git_pathspec_match(pattern, path) is matches


# ---------------------------------------------------------------------------------------------- matrix

def test_matrix_of_git_directories_and_a_list() -> None:
    spec = appset({"generators": [{"matrix": {"generators": [
        {"git": {"repoURL": ARGO, "directories": [{"path": f"{ADDONS}/*"}]}},
        {"list": {"elements": [{"name": "staging"}, {"name": "production"}]}}]}}],
        "template": template("{{path.basename}}-{{name}}", "{{path}}", namespace="{{path.basename}}")})
    names = sorted(app.name for app in generated(spec, tree(*ADDON_FILES[:4])).apps)
    assert names == ["argo-workflows-production", "argo-workflows-staging", "prometheus-operator-production",
                     "prometheus-operator-staging"]


def test_matrix_parameter_override_example() -> None:
    files = {"test/stage.values.yaml": "stageName: test\ncpuRequest: 100m\ndebugEnabled: true\n",
             "staging/stage.values.yaml": "stageName: staging\n",
             "production/stage.values.yaml": "stageName: production\nmemoryLimit: 512Mi\ndebugEnabled: false\n",
             "global.values.yaml": "cpuRequest: 200m\nmemoryLimit: 256Mi\ndebugEnabled: true\n"}
    spec = appset({"goTemplate": True, "generators": [{"matrix": {"generators": [
        {"git": {"repoURL": ARGO, "revision": "HEAD", "files": [{"path": "**/stage.values.yaml"}]}},
        {"git": {"repoURL": ARGO, "revision": "HEAD", "files": [{"path": "global.values.yaml"}]}}]}}],
        "template": template("{{.stageName}}", ".")})
    params = generate_params(spec.generators[0], syntax=spec.syntax, trees=tree(contents=files))
    picked = sorted((p["stageName"], p["cpuRequest"], p["memoryLimit"], p["debugEnabled"]) for p in params)
    assert picked == [("production", "200m", "512Mi", False), ("staging", "200m", "256Mi", True),
                      ("test", "100m", "256Mi", True)]


def test_matrix_second_generator_reads_the_first_ones_parameters() -> None:
    files = {"apps/app-one.json": '{"appName": "app-one"}', "apps/app-two.json": '{"appName": "app-two"}',
             "targets/app-one/east-cluster-one.json": '{"region": "east", "clusterName": "cluster-one"}',
             "targets/app-one/east-cluster-two.json": '{"region": "east", "clusterName": "cluster-two"}',
             "targets/app-two/east-cluster-one.json": '{"region": "east", "clusterName": "cluster-one"}',
             "targets/app-two/west-cluster-three.json": '{"region": "west", "clusterName": "cluster-three"}'}
    spec = appset({"goTemplate": True, "goTemplateOptions": ["missingkey=error"], "generators": [{"matrix": {
        "generators": [
            {"git": {"repoURL": ARGO, "revision": "HEAD", "files": [{"path": "apps/*.json"}],
                     "pathParamPrefix": "app"}},
            {"git": {"repoURL": ARGO, "revision": "HEAD", "files": [{"path": "targets/{{.appName}}/*.json"}],
                     "pathParamPrefix": "target"}}]}}],
        "template": template("{{.appName}}-{{.clusterName}}", "{{.target.path.path}}", namespace="{{.region}}")})
    assert summary(generated(spec, tree(contents=files))) == [
        ("app-one-cluster-one", "targets/app-one", "east"), ("app-one-cluster-two", "targets/app-one", "east"),
        ("app-two-cluster-one", "targets/app-two", "east"), ("app-two-cluster-three", "targets/app-two", "west")]


def test_matrix_children_that_disagree_on_a_parameter_fail_without_go_templates() -> None:
    spec = appset({"generators": [{"matrix": {"generators": [
        {"list": {"elements": [{"name": "a"}]}}, {"list": {"elements": [{"name": "b"}]}}]}}],
        "template": template("{{name}}", ".")})
    outcome = generate(spec, {})
    assert isinstance(outcome, GenerationFailed) and "both generators give 'name'" in outcome.message


def test_matrix_without_go_templates_cannot_combine_nested_values() -> None:
    spec = appset({"generators": [{"matrix": {"generators": [
        {"list": {"elements": [{"name": "a"}]}},
        {"list": {"elementsYaml": "- owner: {team: payments}\n"}}]}}],
        "template": template("{{name}}", ".")})
    outcome = generate(spec, {})
    assert isinstance(outcome, GenerationFailed) and "cannot print dict" in outcome.message


# ---------------------------------------------------------------------------------------------- merge

def test_merge_overrides_matching_parameter_sets_example() -> None:
    spec = appset({"generators": [{"merge": {"mergeKeys": ["server"], "generators": [
        {"list": {"elements": [
            {"name": "staging", "server": "https://1.2.3.4", "values": {"kafka": "true", "redis": "false"}},
            {"name": "production", "server": "https://2.4.6.8", "values": {"kafka": "true", "redis": "false"}}]}},
        {"list": {"elements": [{"name": "staging", "server": "https://1.2.3.4", "values": {"kafka": "false"}}]}},
        {"list": {"elements": [{"server": "https://2.4.6.8", "values.redis": "true"}]}}]}}],
        "template": template("{{name}}", ".")})
    params = generate_params(spec.generators[0], syntax=spec.syntax, trees={})
    assert sorted(params, key=lambda p: p["name"]) == [
        {"name": "production", "server": "https://2.4.6.8", "values.kafka": "true", "values.redis": "true"},
        {"name": "staging", "server": "https://1.2.3.4", "values.kafka": "false", "values.redis": "false"}]


def test_merge_needs_unique_merge_keys() -> None:
    spec = appset({"generators": [{"merge": {"mergeKeys": ["server"], "generators": [
        {"list": {"elements": [{"server": "a"}, {"server": "a"}]}}, {"list": {"elements": []}}]}}],
        "template": template("x", ".")})
    outcome = generate(spec, {})
    assert isinstance(outcome, GenerationFailed) and "same merge keys" in outcome.message


# ---------------------------------------------------------------------------------------------- the set itself

def test_preserve_resources_on_deletion_leaves_no_finalizer() -> None:
    spec = appset({"syncPolicy": {"preserveResourcesOnDeletion": True, "applicationsSync": "create-update"},
                   "generators": [{"list": {"elements": [{"cluster": "dev"}]}}],
                   "template": template("{{cluster}}", ".")})
    assert spec.policy.applications_sync.allows_update and not spec.policy.applications_sync.allows_delete
    assert not generated(spec).apps[0].prune_on_delete


def test_the_allow_empty_annotation() -> None:
    spec = appset({"generators": [{"list": {"elements": []}}], "template": template("x", ".")},
                  annotations={"gitops-agent.io/allow-empty": "true"})
    assert spec.policy.allow_empty


@pytest.mark.parametrize(("elements", "problem"), [
    ([{"cluster": "a"}, {"cluster": "a"}], "generates two Applications named 'a'"),
    ([{"cluster": "Not_A_Name"}], "has no valid name ('Not_A_Name')"),
])
def test_generation_that_cannot_name_its_apps_fails(elements: list[dict[str, str]], problem: str) -> None:
    spec = appset({"generators": [{"list": {"elements": elements}}], "template": template("{{cluster}}", ".")})
    outcome = generate(spec, {})
    assert isinstance(outcome, GenerationFailed) and problem in outcome.message


@pytest.mark.parametrize(("spec", "field"), [
    ({"generators": [{"clusters": {}}]}, "spec.generators[0].clusters"),
    ({"generators": [{"list": {"elements": []}, "selector": {"matchLabels": {"a": "b"}}}]},
     "spec.generators[0].selector"),
    ({"generators": [{"list": {"elements": []}}], "templatePatch": "spec: {}"}, "spec.templatePatch"),
    ({"generators": [{"list": {"elements": []}}], "strategy": {"type": "RollingSync"}}, "spec.strategy"),
    ({"generators": [{"list": {"elements": []}}], "goTemplateOptions": ["option=x"]}, "spec.goTemplateOptions[0]"),
    ({"generators": [{"matrix": {"generators": [{"list": {"elements": [], "template": {"metadata": {}}}},
                                                {"list": {"elements": []}}]}}]},
     "spec.generators[0].matrix.generators[0].list.template"),
])
def test_what_argo_cd_would_honour_and_we_do_not_is_refused(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(Unsupported, match=rf"^{FILE}: ApplicationSet guestbook: {field}".replace("[", r"\[")):
        appset({"template": template("x", "."), **spec})


@pytest.mark.parametrize(("spec", "problem"), [
    ({"generators": []}, "spec.generators: give at least one generator"),
    ({"generators": [{"matrix": {"generators": [{"list": {}}]}}]}, "a matrix combines exactly two generators"),
    ({"generators": [{"git": {"repoURL": ARGO}}]}, "give directories or files"),
    ({"generators": [{"list": {}, "git": {"repoURL": ARGO}}]}, "give exactly one generator"),
    ({"generators": [{"list": {}}], "syncPolicy": {"applicationsSync": "delete-all"}}, "'delete-all' is not one"),
])
def test_malformed_sets_are_invalid(spec: dict[str, Any], problem: str) -> None:
    with pytest.raises(InvalidDefinition) as caught:
        appset({"template": template("x", "."), **spec})
    assert problem in str(caught.value)
