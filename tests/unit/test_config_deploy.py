"""`[agent]` leader-election keys and `${CREDENTIALS_DIRECTORY}` in file paths (systemd LoadCredential=)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config import parse_settings
from agent.errors import ConfigError
from agent.lifecycle import lease_namespace


def test_leader_election_is_off_by_default_with_client_go_timings() -> None:
    election = parse_settings({}).agent.leader_election
    assert not election.enabled
    assert (election.name, election.lease_duration, election.renew_deadline, election.retry_period) == (
        "gitops-agent-leader", 15.0, 10.0, 2.0)


def test_leader_election_keys_are_read() -> None:
    election = parse_settings({"agent": {
        "leader_election": True, "leader_election_namespace": "ops", "leader_election_name": "agent-a",
        "leader_election_lease_duration": "30s", "leader_election_renew_deadline": "20s",
        "leader_election_retry_period": "4s",
    }}).agent.leader_election
    assert (election.enabled, election.namespace, election.name) == (True, "ops", "agent-a")
    assert (election.lease_duration, election.renew_deadline, election.retry_period) == (30.0, 20.0, 4.0)


@pytest.mark.parametrize(("keys", "message"), [
    ({"leader_election_renew_deadline": "20s"}, "leader_election_lease_duration: must be longer than"),
    ({"leader_election_retry_period": "9s"}, "leader_election_renew_deadline: must be longer than 1.2 times"),
    ({"leader_election_name": "Not_A_Name"}, "leader_election_name: must be a DNS subdomain name"),
    ({"leader_election": "yes"}, "agent.leader_election: must be true or false"),
])
def test_leader_election_mistakes_name_the_key(keys: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings({"agent": keys}, file="agent.toml")


def test_lease_namespace_comes_from_the_key_then_the_pod(tmp_path: Path) -> None:
    agent = parse_settings({"agent": {"leader_election": True}}).agent
    assert lease_namespace(agent, {"POD_NAMESPACE": "from-pod"}) == "from-pod"
    (tmp_path / "namespace").write_text("from-mount\n")
    assert lease_namespace(agent, {"KUBERNETES_SERVICE_HOST": "10.0.0.1",
                                   "GITOPS_AGENT_SA_NAMESPACE_FILE": str(tmp_path / "namespace")}) == "from-mount"
    with pytest.raises(ConfigError, match="leader_election_namespace"):
        lease_namespace(agent, {})
    named = parse_settings({"agent": {"leader_election": True, "leader_election_namespace": "ops"}}).agent
    assert lease_namespace(named, {"POD_NAMESPACE": "from-pod"}) == "ops"


def test_credentials_directory_is_expanded_in_file_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/gitops-agent.service/")
    settings = parse_settings({
        "agent": {"kubeconfig": "${CREDENTIALS_DIRECTORY}/kubeconfig",
                  "webhook_secret_file": "${CREDENTIALS_DIRECTORY}/webhook-secret"},
        "repositories": [{"url": "https://git.example.com/", "username": "bot",
                          "password_file": "${CREDENTIALS_DIRECTORY}/git-token"}],
    })
    assert settings.agent.kubeconfig == "/run/credentials/gitops-agent.service/kubeconfig"
    assert settings.agent.webhook_secret_file == "/run/credentials/gitops-agent.service/webhook-secret"
    assert settings.repositories[0].password_file == "/run/credentials/gitops-agent.service/git-token"


def test_credentials_directory_unset_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match=r"repositories\[0\]\.password_file: uses \$\{CREDENTIALS_DIRECTORY\}, "
                                          r"but CREDENTIALS_DIRECTORY is not set"):
        parse_settings({"repositories": [{"url": "https://git.example.com/", "username": "bot",
                                          "password_file": "${CREDENTIALS_DIRECTORY}/git-token"}]}, file="a.toml")


def test_other_variables_are_not_expanded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/root")
    settings = parse_settings({"agent": {"webhook_secret_file": "$HOME/secret"}})
    assert settings.agent.webhook_secret_file == "$HOME/secret"


def test_the_shipped_in_cluster_config_is_valid() -> None:
    from agent.config import load_settings

    root = Path(__file__).resolve().parents[2]
    settings = load_settings(root / "helm-free-manifests" / "base" / "config.toml")
    assert settings.agent.leader_election.enabled and settings.agent.listen == "0.0.0.0:8080"
    assert settings.auth is not None and settings.auth.token_file == "/etc/gitops-agent-tokens/tokens.csv", \
        "listening beyond loopback, the API is behind tokens"
    assert not settings.agent.insecure_no_auth


def test_the_shipped_sharded_config_is_the_base_one_with_sharding() -> None:
    from agent.config import load_settings

    root = Path(__file__).resolve().parents[2] / "helm-free-manifests"
    sharded = load_settings(root / "components" / "sharded" / "config.toml")
    base = load_settings(root / "base" / "config.toml")
    assert sharded.agent.sharding.enabled and not sharded.agent.leader_election.enabled
    assert sharded.auth == base.auth and sharded.agent.listen == base.agent.listen

    def body(path: Path) -> list[str]:  # the file without its heading comment and the election keys
        lines = path.read_text().splitlines()
        return [line for line in lines[lines.index("[agent]"):]
                if not line.startswith(("leader_election =", "sharding ="))]

    assert body(root / "components" / "sharded" / "config.toml") == body(root / "base" / "config.toml"), \
        "components/sharded/config.toml must stay the base config.toml with sharding instead of leader election"


def test_sharding_is_refused_with_leader_election_and_needs_an_address() -> None:
    from agent.lifecycle import advertise_url

    with pytest.raises(ConfigError, match=r"agent\.sharding: replaces leader election"):
        parse_settings({"agent": {"sharding": True, "leader_election": True}}, file="agent.toml")
    with pytest.raises(ConfigError, match="advertise_url: must be http"):
        parse_settings({"agent": {"sharding": True, "advertise_url": "10.0.0.1:8080"}}, file="agent.toml")
    agent = parse_settings({"agent": {"sharding": True, "listen": "0.0.0.0:8080", "insecure_no_auth": True}}).agent
    assert advertise_url(agent, tls=False, environ={"POD_IP": "10.1.2.3"}) == "http://10.1.2.3:8080"
    assert advertise_url(agent, tls=True, environ={"POD_IP": "fd00::1"}) == "https://[fd00::1]:8080"
    with pytest.raises(ConfigError, match="sharding = true needs advertise_url"):
        advertise_url(agent, tls=False, environ={})
