"""[[repositories]]: parsing, longest-prefix matching, secrets read at use and never shown."""

from __future__ import annotations

from pathlib import Path

import pytest
from dulwich.client import SSHGitClient

from agent.argocd import CredentialKind, RepoCredentials
from agent.config import parse_settings
from agent.errors import ConfigError, SourceError
from agent.model import RepoSpec
from agent.source.credentials import Access, CredentialStore, read_secret
from agent.source.transport import inline_key_file, open_client, request_error

SECRET = "tok-3f9a-very-secret"


def store() -> CredentialStore:
    return CredentialStore([
        RepoSpec(url="https://git.example.com/", username="reader", password_env="GENERIC_TOKEN"),
        RepoSpec(url="https://git.example.com/payments/", username="deploy-bot", password_env="PAYMENTS_TOKEN",
                 ca_file="/etc/ca.pem"),
        RepoSpec(url="git@git.example.com:", ssh_key_file="/keys/id", known_hosts_file="/keys/known_hosts"),
    ])


def test_longest_prefix_wins() -> None:
    credentials = store()
    payments = credentials.match("https://git.example.com/payments/gitops.git")
    assert payments is not None and payments.username == "deploy-bot"
    other = credentials.match("https://git.example.com/ledger/gitops.git")
    assert other is not None and other.username == "reader"
    ssh = credentials.match("git@git.example.com:payments/gitops.git")
    assert ssh is not None and ssh.ssh_key_file == "/keys/id"
    assert credentials.match("https://elsewhere.example.com/x.git") is None


def test_credentials_in_the_url_do_not_defeat_matching() -> None:
    spec = store().match("https://someone:pw@git.example.com/payments/gitops.git")
    assert spec is not None and spec.username == "deploy-bot"


def test_webhook_matching_is_normalized_and_respects_path_boundaries() -> None:
    credentials = store()
    spec = credentials.match_normalized("git@git.example.com:payments/gitops.git")
    assert spec is not None and spec.username == "deploy-bot"
    spec = credentials.match_normalized("https://GIT.example.com/payments/gitops")
    assert spec is not None and spec.username == "deploy-bot"
    spec = credentials.match_normalized("https://git.example.com/payments-legacy/gitops")
    assert spec is not None and spec.username == "reader"


def test_access_reads_the_password_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENTS_TOKEN", SECRET)
    access = store().access("https://git.example.com/payments/gitops.git")
    assert (access.username, access.password, access.ca_file) == ("deploy-bot", SECRET, "/etc/ca.pem")
    assert SECRET not in repr(access)


def test_access_without_an_entry_uses_url_credentials() -> None:
    access = CredentialStore([]).access("https://bob:pa%3Ass@host/repo.git")
    assert (access.username, access.password) == ("bob", "pa:ss")


def test_missing_secret_names_the_key_and_variable_not_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYMENTS_TOKEN", raising=False)
    with pytest.raises(SourceError) as excinfo:
        store().access("https://git.example.com/payments/gitops.git")
    assert str(excinfo.value) == (
        "https://git.example.com/payments/gitops.git: password_env 'PAYMENTS_TOKEN': "
        "the environment variable is not set"
    )


def test_password_file_is_read_and_stripped(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text(SECRET + "\n")
    assert read_secret("r", env="", file=str(path), key_env="password_env", key_file="password_file") == SECRET
    with pytest.raises(SourceError, match=r"password_file .*cannot read"):
        read_secret("r", env="", file=str(tmp_path / "nope"), key_env="password_env", key_file="password_file")


def test_error_messages_scrub_the_password() -> None:
    error = request_error("https://bot:" + SECRET + "@host/repo.git", "fetch",
                          OSError(f"connection to https://bot:{SECRET}@host failed"), (SECRET,))
    assert SECRET not in str(error)
    assert str(error).startswith("https://host/repo.git: fetch failed:")


def test_repositories_are_parsed_strictly() -> None:
    settings = parse_settings({
        "agent": {"max_repo_files": 50, "max_file_size": "1MiB", "max_repo_size": 2_000_000,
                  "webhook_secret_env": "HOOK", "webhook_max_body": "512KiB", "git_timeout": "30s"},
        "repositories": [{"url": "https://git.example.com/", "username": "bot", "password_file": "/run/token",
                          "insecure_skip_tls_verify": True, "webhook_secret_env": "REPO_HOOK"}],
    }, file="agent.toml")
    agent = settings.agent
    assert (agent.max_repo_files, agent.max_file_size, agent.max_repo_size) == (50, 1024 * 1024, 2_000_000)
    assert (agent.webhook_max_body, agent.git_timeout, agent.webhook_secret_env) == (512 * 1024, 30.0, "HOOK")
    assert settings.repositories == (RepoSpec(url="https://git.example.com/", username="bot",
                                              password_file="/run/token", insecure_skip_tls_verify=True,
                                              webhook_secret_env="REPO_HOOK"),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"repositories": [{"url": "https://h/", "pasword_env": "X"}]},
         "agent.toml: repositories[0].pasword_env: unknown key"),
        ({"repositories": [{"username": "u"}]}, "agent.toml: repositories[0].url: is required"),
        ({"repositories": [{"url": "https://h/", "password_env": "X"}]},
         "agent.toml: repositories[0].username: is required"),
        ({"repositories": [{"url": "https://h/", "username": "u", "password_env": "X", "password_file": "/f"}]},
         "agent.toml: repositories[0].password_file: give password_env or password_file, not both"),
        ({"repositories": [{"url": "https://h/"}, {"url": "https://h/"}]},
         "agent.toml: repositories[1].url: 'https://h/' is used by another [[repositories]] entry"),
        ({"repositories": [{"url": "https://h/", "insecure_skip_tls_verify": "yes"}]},
         "agent.toml: repositories[0].insecure_skip_tls_verify: must be true or false, not a string 'yes'"),
        ({"agent": {"max_file_size": "4 furlongs"}}, "agent.toml: agent.max_file_size: '4 furlongs' is not a size"),
        ({"agent": {"max_repo_files": 0}}, "agent.toml: agent.max_repo_files: must be at least 1, not 0"),
    ],
)
def test_bad_repositories_config_names_file_table_and_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_settings(data, file="agent.toml")
    assert str(excinfo.value).startswith(message)


def test_ssh_urls_get_an_ssh_client_with_the_configured_user(tmp_path: Path) -> None:
    scp_client, scp_path = open_client("git@git.example.com:payments/gitops.git", Access(), timeout=5,
                                       key_dir=tmp_path)
    assert isinstance(scp_client, SSHGitClient)
    assert (scp_client.host, scp_client.port, scp_client.username, scp_path) == (
        "git.example.com", None, "git", "payments/gitops.git")
    url_client, url_path = open_client("ssh://git@git.example.com:2222/payments/gitops.git",
                                       Access(username="deploy"), timeout=5, key_dir=tmp_path)
    assert isinstance(url_client, SSHGitClient)
    assert (url_client.host, url_client.port, url_client.username, url_path) == (
        "git.example.com", 2222, "deploy", "/payments/gitops.git")


def test_https_client_carries_credentials_outside_the_url(tmp_path: Path) -> None:
    client, path = open_client("https://git.example.com/payments/gitops.git",
                               Access(username="bot", password=SECRET), timeout=5, key_dir=tmp_path)
    assert SECRET not in client.get_url(path)
    assert path == "/payments/gitops.git"


def secret_credentials(url: str, kind: CredentialKind, **values: str) -> RepoCredentials:
    return RepoCredentials(url=url, kind=kind, secret=f"argocd/{kind.value}", **values)  # type: ignore[arg-type]


def test_argo_cd_secrets_beside_the_configuration_exact_url_first_then_the_longest_prefix(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENERIC_TOKEN", "toml-generic")
    monkeypatch.setenv("PAYMENTS_TOKEN", "toml-payments")
    exact = secret_credentials("https://git.example.com/payments/gitops.git", CredentialKind.REPOSITORY,
                               username="argocd-bot", password="exact")
    prefix = secret_credentials("https://git.example.com/payments/ledger/", CredentialKind.REPO_CREDS,
                                username="ledger-bot", password="longer-prefix")
    tie = secret_credentials("https://git.example.com/", CredentialKind.REPO_CREDS, password="same-prefix")
    credentials = CredentialStore(store().repositories, [exact, prefix, tie])
    assert credentials.access("https://git.example.com/payments/gitops.git").password == "exact"
    assert credentials.access("https://git.example.com/payments/ledger/x.git").password == "longer-prefix"
    assert credentials.access("https://git.example.com/payments/other.git").password == "toml-payments"
    assert credentials.access("https://git.example.com/fx.git").password == "toml-generic", "the file wins a tie"
    assert CredentialStore([], [tie]).access("https://git.example.com/fx.git").password == "same-prefix"


def test_an_inline_ssh_key_and_insecure_from_a_secret_never_show() -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----"
    secret = secret_credentials("git@git.example.com:payments/gitops.git", CredentialKind.REPOSITORY,
                                ssh_private_key=key, insecure=True)  # type: ignore[arg-type]
    access = CredentialStore([], [secret]).access("git@git.example.com:payments/gitops.git")
    assert access.ssh_key_data == key and access.insecure_ignore_host_key and access.insecure_skip_tls_verify
    assert key in access.secrets and "BEGIN" not in repr(access)


def test_an_inline_key_is_written_once_readable_by_its_owner_only(tmp_path: Path) -> None:
    first = inline_key_file("KEY", tmp_path / "keys")
    assert Path(first).read_text() == "KEY\n" and oct(Path(first).stat().st_mode & 0o777) == "0o600"
    assert inline_key_file("KEY", tmp_path / "keys") == first
