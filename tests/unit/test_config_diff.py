"""What a configuration reload changes: the pure comparison of running and loaded settings."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import pytest

from agent.config import (
    AgentSettings,
    AppSpec,
    HealthCheckSpec,
    KustomizeSpec,
    LeaderElectionSettings,
    RenderSettings,
    RepoSpec,
    Settings,
    ShardingSettings,
    SyncPolicy,
    parse_settings,
)
from agent.config.diff import (
    AGENT_KEYS,
    RELOADABLE_AGENT_KEYS,
    SettingsChange,
    desired_state_changed,
    diff_settings,
    effective_settings,
)
from agent.errors import ConfigError
from agent.reloader import describe


def app(name: str, **fields: object) -> AppSpec:
    return AppSpec(name=name, repo="https://git.example.com/org/repo.git", **fields)  # type: ignore[arg-type]


def settings(*apps: AppSpec, **agent: object) -> Settings:
    return Settings(agent=AgentSettings(**agent), applications=apps)  # type: ignore[arg-type]


def test_identical_settings_change_nothing() -> None:
    running = settings(app("a"), app("b", path="x"))
    assert diff_settings(running, settings(app("a"), app("b", path="x"))).empty


def test_apps_added_removed_and_changed_are_told_apart() -> None:
    running = settings(app("a", path="v1"), app("b"), app("unchanged"))
    loaded = settings(app("unchanged"), app("c"), app("a", path="v2"))
    change = diff_settings(running, loaded)
    assert [spec.name for spec in change.added] == ["c"]
    assert change.removed == (app("b"),)  # the running spec: its prune_on_delete decides
    assert change.changed == (app("a", path="v2"),)  # the new spec
    assert not change.agent_keys and not change.repositories and not change.health_checks


@pytest.mark.parametrize("fields", [
    {"sync_policy": SyncPolicy(self_heal=True)},
    {"prune_on_delete": True},
    {"kustomize": KustomizeSpec(name_prefix="eu-")},
    {"revision": "v2"},
])
def test_any_field_of_an_app_spec_makes_it_changed(fields: dict[str, object]) -> None:
    change = diff_settings(settings(app("a")), settings(app("a", **fields)))
    assert [spec.name for spec in change.changed] == ["a"]


def test_removed_app_keeps_its_running_prune_on_delete() -> None:
    running = settings(app("gone", prune_on_delete=True))
    (removed,) = diff_settings(running, settings()).removed
    assert removed.prune_on_delete


def test_agent_keys_are_named_as_in_the_file_and_split_by_restart() -> None:
    running = settings(poll_interval=180.0, listen="127.0.0.1:8080")
    loaded = settings(poll_interval=30.0, listen="0.0.0.0:9090", history_limit=10,
                      render=RenderSettings(kustomize_path="/usr/bin/kustomize"),
                      leader_election=LeaderElectionSettings(name="other-lease"))
    change = diff_settings(running, loaded)
    assert change.agent_keys == ("listen", "poll_interval", "history_limit", "kustomize_path",
                                 "leader_election_name")
    assert change.restart_keys == ("listen", "kustomize_path", "leader_election_name")
    assert change.applied_keys == ("poll_interval", "history_limit")


def test_effective_settings_keep_restart_keys_and_take_the_rest() -> None:
    running = Settings(agent=AgentSettings(listen="127.0.0.1:8080", state_dir=Path("/old"), poll_interval=180.0,
                                           max_concurrent_reconciles=20),
                       applications=(app("a"),), source=Path("/etc/agent.toml"))
    loaded = Settings(
        agent=AgentSettings(listen="0.0.0.0:1", state_dir=Path("/new"), poll_interval=5.0, poll_jitter=1.0,
                            max_concurrent_reconciles=1, git_timeout=5.0,
                            leader_election=LeaderElectionSettings(enabled=True)),
        applications=(app("b"),), source=Path("/etc/agent.toml"),
        repositories=(RepoSpec(url="https://git.example.com/"),),
        health_checks=(HealthCheckSpec(kind="Widget", group="example.com"),),
    )
    effective = effective_settings(running, loaded)
    agent = effective.agent
    assert (agent.listen, agent.state_dir, agent.max_concurrent_reconciles) == ("127.0.0.1:8080", Path("/old"), 20)
    assert not agent.leader_election.enabled
    assert (agent.poll_interval, agent.poll_jitter, agent.git_timeout) == (5.0, 1.0, 5.0)
    assert effective.applications == loaded.applications
    assert effective.repositories == loaded.repositories and effective.health_checks == loaded.health_checks


def test_every_agent_setting_has_a_key_and_nested_groups_reload_alike() -> None:
    """A new [agent] setting must be classified, or a reload would silently ignore it."""
    groups = ("render", "leader_election", "sharding")
    paths = {f.name for f in dataclasses.fields(AgentSettings) if f.name not in groups}
    paths |= {f"render.{f.name}" for f in dataclasses.fields(RenderSettings)}
    paths |= {f"leader_election.{f.name}" for f in dataclasses.fields(LeaderElectionSettings)}
    paths |= {f"sharding.{f.name}" for f in dataclasses.fields(ShardingSettings)}
    assert set(AGENT_KEYS.values()) == paths
    assert set(AGENT_KEYS) >= RELOADABLE_AGENT_KEYS
    for group in groups:  # effective_settings keeps or takes a group whole
        keys = {key for key, where in AGENT_KEYS.items() if where.startswith(group + ".")}
        assert not keys & RELOADABLE_AGENT_KEYS


def test_agent_keys_match_what_the_parser_reads() -> None:
    for key in AGENT_KEYS:
        with pytest.raises(ConfigError) as raised:
            parse_settings({"agent": {key: object()}}, file="f.toml")
        assert "unknown key" not in str(raised.value), key


def test_repositories_and_health_checks_changes_are_flagged() -> None:
    running = settings()
    loaded = replace(running, repositories=(RepoSpec(url="https://git.example.com/"),),
                     health_checks=(HealthCheckSpec(kind="Widget"),))
    change = diff_settings(running, loaded)
    assert change.repositories and change.health_checks
    assert not change.added and not change.agent_keys


@pytest.mark.parametrize(("fields", "new_state"), [
    ({"path": "v2"}, True), ({"repo": "https://git.example.com/other.git"}, True), ({"revision": "v2"}, True),
    ({"namespace": "elsewhere"}, True), ({"kustomize": KustomizeSpec(images=("api:v2",))}, True),
    ({"sync_policy": SyncPolicy(prune=True)}, False), ({"prune_on_delete": True}, False),
])
def test_desired_state_changes_when_what_is_rendered_changes(fields: dict[str, object], new_state: bool) -> None:
    old = app("a")
    assert desired_state_changed(old, replace(old, **fields)) is new_state  # type: ignore[arg-type]


def test_describe_names_every_part_of_a_change() -> None:
    change = SettingsChange(added=(app("c"),), removed=(app("b"),), changed=(app("a"),),
                            agent_keys=("listen", "poll_interval"), restart_keys=("listen",), repositories=True)
    assert describe(change) == "1 added (c); 1 removed (b); 1 changed (a); [agent] poll_interval; [[repositories]]"
    assert describe(SettingsChange()) == "nothing changed"


def test_prune_on_delete_is_read_and_defaults_to_false() -> None:
    data = {"applications": [{"name": "a", "repo": "r"}, {"name": "b", "repo": "r", "prune_on_delete": True}]}
    first, second = parse_settings(data).applications
    assert (first.prune_on_delete, second.prune_on_delete) == (False, True)
    with pytest.raises(ConfigError, match=r"applications\[0\]\.prune_on_delete: must be true or false"):
        parse_settings({"applications": [{"name": "a", "repo": "r", "prune_on_delete": "yes"}]})
