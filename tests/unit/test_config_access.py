"""`[[projects]]`, `project =` on apps, `[auth]`, and the rule that an open API listens on loopback only."""

from __future__ import annotations

import tomllib

import pytest

from agent.config import parse_settings
from agent.config.diff import diff_settings, effective_settings
from agent.errors import ConfigError
from agent.model import Destination, ResourceKind, SyncWindow
from agent.policy import IN_CLUSTER_SERVER
from tests.support.projects import seed_project_toml

AUTH = {"token_file": "/etc/gitops-agent/tokens.csv"}


def settings_of(text: str, file: str = "agent.toml"):  # type: ignore[no-untyped-def]
    return parse_settings(tomllib.loads(text), file=file)


def test_the_seed_app_project_reads_as_written() -> None:
    windows = """[[projects.sync_windows]]
kind = "deny"
schedule = "0 22 * * *"
duration = "8h"
applications = ["*-prod"]
manual_sync = true
time_zone = "Africa/Johannesburg"
"""
    (project,) = settings_of(seed_project_toml(windows=windows)).projects
    assert project.source_repos == ("https://github.com/payments-engine/gitops.git",)
    assert project.destinations == (Destination(server=IN_CLUSTER_SERVER, namespace="payments"),
                                    Destination(server=IN_CLUSTER_SERVER, namespace="payments-*"))
    assert project.cluster_resource_whitelist == (ResourceKind("", "Namespace"),)
    assert project.namespace_resource_whitelist == (ResourceKind("apps", "Deployment"), ResourceKind("", "Service"),
                                                    ResourceKind("", "ConfigMap"))
    assert [role.name for role in project.roles] == ["developer", "admin"]
    assert project.sync_windows == (SyncWindow(kind="deny", schedule="0 22 * * *", duration="8h",
                                               applications=("*-prod",), manual_sync=True,
                                               time_zone="Africa/Johannesburg"),)
    assert project.adopt_existing and project.origin == "agent.toml: projects[0]"


def test_apps_belong_to_default_unless_they_name_a_project() -> None:
    settings = parse_settings({"applications": [{"name": "a", "repo": "https://x/r.git"},
                                                {"name": "b", "repo": "https://x/r.git", "project": "payments-team"}]})
    assert [app.project for app in settings.applications] == ["default", "payments-team"]


@pytest.mark.parametrize(("project", "message"), [
    ({"source_repos": ["!*"]}, r"agent.toml: projects\[0\].source_repos: '!\*' would deny every repository"),
    ({"destinations": [{"namespace": "x"}]}, r"projects\[0\].destinations\[0\].server: give server"),
    ({"destinations": [{"server": "*", "namespace": "!*"}]}, r"destinations\[0\].namespace: '!\*' matches nothing"),
    ({"namespace_resource_whitelist": [{"group": "apps"}]}, r"namespace_resource_whitelist\[0\].kind: is required"),
    ({"roles": [{"name": "dev", "policies": ["p, proj:other:dev, applications, get, p/*, allow"]}]},
     "projects\\[0\\].roles: project p role dev policies\\[0\\]: the subject must be proj:p:dev"),
    ({"roles": [{"name": "dev", "policies": ["p, proj:p:dev, applications, get"]}]},
     r"roles\[0\].policies\[0\]: policy_csv line 1: a p line has five fields"),
    ({"sync_windows": [{"kind": "deny", "schedule": "0 22 * * *", "duration": "8h"}]},
     r"sync_windows\[0\].applications: a window needs applications, namespaces or clusters"),
    ({"sync_windows": [{"kind": "deny", "schedule": "0 22 * *", "duration": "8h", "applications": ["*"]}]},
     r"sync_windows\[0\].schedule: schedule '0 22 \* \*' must be a cron expression of five fields"),
    ({"sync_windows": [{"kind": "deny", "schedule": "0 22 * * *", "duration": "8h", "namespaces": ["*"],
                        "time_zone": "Nowhere/Land"}]}, r"sync_windows\[0\].time_zone: time zone 'Nowhere/Land'"),
    ({"adopt_existing": "no"}, "projects\\[0\\].adopt_existing: must be true or false"),
    ({"source_reps": []}, r"projects\[0\].source_reps: unknown key"),
])
def test_project_mistakes_name_file_table_and_key(project: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings({"projects": [{"name": "p", **project}]}, file="agent.toml")


def test_projects_names_are_unique_and_an_unknown_project_is_not_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"projects\[1\].name: 'p' is used by another project"):
        parse_settings({"projects": [{"name": "p"}, {"name": "p"}]}, file="agent.toml")
    settings = parse_settings({"applications": [{"name": "a", "repo": "https://x/r.git", "project": "from-git"}]})
    assert settings.applications[0].project == "from-git"


def test_auth_is_read_and_checked() -> None:
    auth = parse_settings({"auth": {**AUTH, "policy_default": "role:readonly", "metrics_auth": True,
                                    "policy_csv": "g, ci-bot, role:admin\n"}}).auth
    assert auth is not None and auth.policy_default == "role:readonly" and auth.metrics_auth
    for table, message in [
        ({}, "agent.toml: auth.token_file: is required"),
        ({**AUTH, "tls_cert_file": "/c.pem"}, "auth.tls_key_file: give tls_cert_file and tls_key_file together"),
        ({**AUTH, "policy_csv": "p, x, applications, get, */*, perhaps"}, "auth.policy_csv: policy_csv line 1"),
        ({**AUTH, "tokens": "x"}, "auth.tokens: unknown key"),
    ]:
        with pytest.raises(ConfigError, match=message):
            parse_settings({"auth": table}, file="agent.toml")


@pytest.mark.parametrize("listen", ["127.0.0.1:8080", "127.0.0.2:8080", "[::1]:8080", "localhost:8080", ":8080"])
def test_an_open_api_may_listen_on_loopback(listen: str) -> None:
    assert parse_settings({"agent": {"listen": listen}}).auth is None


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:8080", "agent.example.com:8080"])
def test_an_open_api_elsewhere_refuses_to_start_and_names_the_fix(listen: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_settings({"agent": {"listen": listen}}, file="agent.toml")
    message = str(caught.value)
    assert message.startswith(f"agent.toml: agent.listen: {listen!r} is not a loopback address")
    assert "[auth]" in message and "insecure_no_auth = true" in message
    assert parse_settings({"agent": {"listen": listen}, "auth": AUTH}).auth is not None
    assert parse_settings({"agent": {"listen": listen, "insecure_no_auth": True}}).agent.insecure_no_auth


def test_a_reload_takes_new_policies_but_never_drops_auth() -> None:
    running = parse_settings({"agent": {"listen": "0.0.0.0:8080"}, "auth": AUTH})
    changed = parse_settings({"agent": {"listen": "0.0.0.0:8080"},
                              "auth": {**AUTH, "policy_default": "role:readonly"}, "projects": [{"name": "p"}]})
    change = diff_settings(running, changed)
    assert change.auth and change.projects and not change.auth_restart
    assert effective_settings(running, changed).auth == changed.auth
    dropped = parse_settings({"agent": {"listen": "0.0.0.0:8080", "insecure_no_auth": True}})
    change = diff_settings(running, dropped)
    assert change.auth_restart and not change.auth
    assert effective_settings(running, dropped).auth == running.auth, "the API stays behind tokens until a restart"
