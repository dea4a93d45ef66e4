"""Repository credentials from Argo CD's `repository` and `repo-creds` Secrets; secrets never shown."""

from __future__ import annotations

import base64
from typing import Any

import pytest
import yaml

from agent.argocd import CredentialKind, credential_kind, match_credentials, parse_credentials_secret
from agent.errors import ConfigError
from tests.unit.argocd_seed import SEED_REPOSITORY_SECRET

TOKEN = "ghp_sEcReT0123456789"  # a test value, never a real token
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def secret(kind: str, *, data: dict[str, str] | None = None, string_data: dict[str, str] | None = None,
           name: str = "repo") -> dict[str, Any]:
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": "Secret",
                           "metadata": {"name": name, "namespace": "argocd",
                                        "labels": {"argocd.argoproj.io/secret-type": kind}}}
    if data is not None:
        obj["data"] = {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}
    if string_data is not None:
        obj["stringData"] = string_data
    return obj


def test_the_seed_secret_written_with_string_data() -> None:
    creds = parse_credentials_secret(yaml.safe_load(SEED_REPOSITORY_SECRET))
    assert (creds.kind, creds.url, creds.username, creds.password, creds.secret) == (
        CredentialKind.REPOSITORY, "https://github.com/payments-engine/gitops.git", "argocd-bot", "${GITHUB_PAT}",
        "argocd/github-repo")


def test_data_is_base64_decoded_and_string_data_wins() -> None:
    creds = parse_credentials_secret(secret("repo-creds", data={"url": "git@github.com:payments-engine/",
                                                                "sshPrivateKey": KEY, "insecure": "true"},
                                            string_data={"url": "git@github.com:payments-engine"}))
    assert (creds.kind, creds.url, creds.ssh_private_key, creds.insecure) == (
        CredentialKind.REPO_CREDS, "git@github.com:payments-engine", KEY, True)


def test_secret_values_never_show_in_repr_or_str() -> None:
    creds = parse_credentials_secret(secret("repository", data={"url": "https://git.example.com/r.git",
                                                                "password": TOKEN, "sshPrivateKey": KEY}))
    for text in (repr(creds), str(creds), f"{creds}"):
        assert TOKEN not in text and "OPENSSH" not in text
    assert set(creds.secrets) == {TOKEN, KEY}


@pytest.mark.parametrize(("obj", "message"), [
    (secret("repository", data={"url": "https://x/r.git"}) | {"data": {"password": "!!not base64!!",
                                                                       "url": "aHR0cHM6Ly94L3IuZ2l0"}},
     "Secret argocd/repo: data.password: is not base64-encoded UTF-8 text"),
    (secret("repository", string_data={"url": "https://x/r.git", "githubAppPrivateKey": TOKEN}),
     "Secret argocd/repo: key githubAppPrivateKey is not supported"),
    (secret("repository", string_data={"url": "https://x/r.git", "insecure": TOKEN}),
     "Secret argocd/repo: insecure: must be true or false"),
    (secret("repository", string_data={"password": TOKEN}), "Secret argocd/repo: url: is required"),
    (secret("repository", string_data={"url": "oci://registry/charts", "type": "helm"}),
     "Secret argocd/repo: type: only git repositories are supported"),
    (secret("cluster", string_data={"url": "x"}), "Secret argocd/repo: label argocd.argoproj.io/secret-type"),
])
def test_errors_name_the_secret_and_key_never_a_value(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_credentials_secret(obj)
    assert str(caught.value).startswith(message)
    assert TOKEN not in str(caught.value) and caught.value.__cause__ is None


def test_only_labelled_secrets_are_credentials() -> None:
    assert credential_kind(secret("repo-creds")) is CredentialKind.REPO_CREDS
    assert credential_kind({"metadata": {"name": "x"}}) is None
    assert credential_kind(secret("cluster")) is None


def creds(kind: str, url: str, **values: str) -> Any:
    return parse_credentials_secret(secret(kind, string_data={"url": url, **values}, name=url.rsplit("/", 1)[-1]))


def test_a_repository_secret_matches_its_url_normalized() -> None:
    repository = creds("repository", "https://GitHub.com/payments-engine/gitops.git", username="bot", password=TOKEN)
    assert match_credentials("https://github.com/payments-engine/gitops", [repository]) == repository
    assert match_credentials("https://github.com/payments-engine/other.git", [repository]) is None


def test_repo_creds_match_by_the_longest_url_prefix() -> None:
    org = creds("repo-creds", "https://github.com/payments-engine", username="org-bot", password="a")
    team = creds("repo-creds", "https://github.com/payments-engine/gitops", username="team-bot", password="b")
    assert match_credentials("https://github.com/payments-engine/gitops.git", [org, team]) == team
    assert match_credentials("https://github.com/payments-engine/ledger.git", [org, team]) == org


def test_a_repository_secret_without_credentials_takes_them_from_repo_creds() -> None:
    repository = creds("repository", "https://github.com/payments-engine/gitops.git", insecure="true")
    org = creds("repo-creds", "https://github.com/payments-engine", username="org-bot", password=TOKEN)
    found = match_credentials("https://github.com/payments-engine/gitops.git", [repository, org])
    assert found is not None
    assert (found.secret, found.username, found.password, found.insecure) == (repository.secret, "org-bot", TOKEN,
                                                                              True)


def test_project_scoped_credentials_serve_only_their_project() -> None:
    scoped = creds("repository", "https://github.com/payments-engine/gitops.git", username="bot", password=TOKEN,
                   project="payments-team")
    assert match_credentials(scoped.url, [scoped], project="payments-team") == scoped
    assert match_credentials(scoped.url, [scoped], project="default") is None
