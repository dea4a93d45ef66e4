"""The render keys of the configuration: `[agent]` render settings, `[applications.directory]`,
`[applications.kustomize]`."""

import pytest

from agent.config import DirectorySpec, KustomizeSpec, RenderSettings, parse_settings
from agent.errors import ConfigError

APP = {"name": "web", "repo": "https://git.example.com/r.git"}


def test_defaults() -> None:
    settings = parse_settings({"applications": [APP]})
    assert settings.agent.render == RenderSettings(kustomize_path="", render_timeout=60.0, max_concurrent_renders=4)
    (app,) = settings.applications
    assert app.directory == DirectorySpec(recurse=False, include=(), exclude=())
    assert app.kustomize == KustomizeSpec() and app.kustomize.empty


def test_render_keys_of_agent() -> None:
    settings = parse_settings({"agent": {"kustomize_path": "/usr/local/bin/kustomize", "render_timeout": "90s",
                                         "max_concurrent_renders": 2}})
    assert settings.agent.render == RenderSettings("/usr/local/bin/kustomize", 90.0, 2)


@pytest.mark.parametrize(
    ("agent", "problem"),
    [({"render_timeout": "0s"}, "agent.render_timeout: must be greater than zero"),
     ({"render_timeout": "soon"}, "agent.render_timeout: 'soon' is not a duration"),
     ({"max_concurrent_renders": 0}, "agent.max_concurrent_renders: must be at least 1"),
     ({"kustomize_path": 1}, "agent.kustomize_path: must be a string")],
)
def test_bad_render_keys(agent: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        parse_settings({"agent": agent}, file="a.toml")


def test_directory_table() -> None:
    app = {**APP, "directory": {"recurse": True, "include": "{*.yaml,*.json}", "exclude": ["tests/*", "*.tmpl.yaml"]}}
    (spec,) = parse_settings({"applications": [app]}).applications
    assert spec.directory == DirectorySpec(recurse=True, include=("{*.yaml,*.json}",),
                                           exclude=("tests/*", "*.tmpl.yaml"))


def test_kustomize_table() -> None:
    app = {**APP, "kustomize": {
        "name_prefix": "prod-", "name_suffix": "-v2", "namespace": "payments",
        "common_labels": {"team": "payments", "env": "prod"}, "common_annotations": {"owner": "alice"},
        "label_without_selector": True,
        "images": ["payment-service=registry.example.com/payment-service:v1.3.0", "ledger@sha256:abc"],
        "replicas": ["payment-service=3", "ledger=0"],
    }}
    (spec,) = parse_settings({"applications": [app]}).applications
    assert spec.kustomize == KustomizeSpec(
        name_prefix="prod-", name_suffix="-v2", namespace="payments",
        common_labels=(("env", "prod"), ("team", "payments")), common_annotations=(("owner", "alice"),),
        label_without_selector=True,
        images=("payment-service=registry.example.com/payment-service:v1.3.0", "ledger@sha256:abc"),
        replicas=(("payment-service", 3), ("ledger", 0)),
    )
    hash(spec)  # AppSpec stays hashable


@pytest.mark.parametrize(
    ("table", "key", "problem"),
    [
        ("kustomize", {"images": ["nginx"]}, "applications[0].kustomize.images[0]: 'nginx' changes nothing"),
        ("kustomize", {"images": [":v1"]}, "applications[0].kustomize.images[0]: ':v1' names no image"),
        ("kustomize", {"replicas": ["web"]}, "applications[0].kustomize.replicas[0]: 'web' must be NAME=COUNT"),
        ("kustomize", {"replicas": ["web=-1"]}, "applications[0].kustomize.replicas[0]: 'web=-1' must be NAME=COUNT"),
        ("kustomize", {"common_labels": {"team": 1}}, "applications[0].kustomize.common_labels.team: must be a string"),
        ("kustomize", {"namespace": "Payments"}, "applications[0].kustomize.namespace: 'Payments' must be a DNS label"),
        ("kustomize", {"name_prefx": "x"}, "applications[0].kustomize.name_prefx: unknown key"),
        ("directory", {"recurse": "yes"}, "applications[0].directory.recurse: must be true or false"),
        ("directory", {"include": [1]}, "applications[0].directory.include: must be a glob or an array of globs"),
        ("directory", {"exclude": ""}, "applications[0].directory.exclude: must be a glob or an array of globs"),
    ],
)
def test_bad_app_render_tables_name_file_table_and_key(table: str, key: dict[str, object], problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"applications": [{**APP, table: key}]}, file="a.toml")
    assert str(caught.value).startswith(f"a.toml: {problem}")
