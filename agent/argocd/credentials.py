"""Repository credentials the Argo CD way: Secrets labelled `argocd.argoproj.io/secret-type:
repository` (one repository, matched by URL) or `repo-creds` (every repository under a URL prefix).

A Secret (a dict, as the API returns it or as written with `stringData`) → `RepoCredentials`,
whose secret fields never show in repr or str. Errors name the Secret and the key, never a value.
Keys that would change how Argo CD authenticates and that are not supported here (TLS client
certificates, GitHub App, cloud identities, proxies) are refused rather than ignored.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from agent.errors import ConfigError

SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"
_ACCEPTED = ("url", "username", "password", "sshPrivateKey", "insecure", "type", "name", "project")
# Go's strconv.ParseBool, which Argo CD reads `insecure` with.
_TRUE, _FALSE = {"1", "t", "T", "TRUE", "true", "True"}, {"0", "f", "F", "FALSE", "false", "False"}
_SCP_LIKE = re.compile(r"^([\w.-]+@)?([\w.-]+):(?!//)")


class CredentialKind(enum.StrEnum):
    REPOSITORY = "repository"  # one repository, its URL compared normalized
    REPO_CREDS = "repo-creds"  # a template for every repository whose URL starts with this one


@dataclass(frozen=True)
class RepoCredentials:
    url: str
    kind: CredentialKind
    secret: str  # namespace/name of the Secret, for messages
    username: str = ""
    password: str = field(default="", repr=False)
    ssh_private_key: str = field(default="", repr=False)
    insecure: bool = False  # skip TLS verification and the SSH host key check, as Argo CD's `insecure`
    project: str = ""  # Argo CD's project-scoped credentials: only apps of this project may use them

    def __str__(self) -> str:
        return repr(self)

    @property
    def has_credentials(self) -> bool:
        return bool(self.username or self.password or self.ssh_private_key)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values to scrub from any text that leaves the agent."""
        return tuple(value for value in (self.password, self.ssh_private_key) if value)


def credential_kind(secret: Mapping[str, Any]) -> CredentialKind | None:
    """The kind a Secret's label declares; None for any other Secret."""
    labels = (secret.get("metadata") or {}).get("labels") or {}
    try:
        return CredentialKind(labels.get(SECRET_TYPE_LABEL, ""))
    except ValueError:
        return None


def parse_credentials_secret(secret: Mapping[str, Any]) -> RepoCredentials:
    """The credentials a labelled Secret holds. Raises ConfigError naming the Secret and key."""
    meta = secret.get("metadata") or {}
    where = f"Secret {meta.get('namespace') or ''}/{meta.get('name') or ''}".replace(" /", " ")
    kind = credential_kind(secret)
    if kind is None:
        raise ConfigError(f"{where}: label {SECRET_TYPE_LABEL} must be repository or repo-creds")
    values = _decoded(secret, where)
    unknown = sorted(set(values) - set(_ACCEPTED))
    if unknown:
        raise ConfigError(f"{where}: key {unknown[0]} is not supported (supported: {', '.join(_ACCEPTED)})")
    if values.get("type", "git") != "git":
        raise ConfigError(f"{where}: type: only git repositories are supported")
    if not values.get("url"):
        raise ConfigError(f"{where}: url: is required")
    insecure = values.get("insecure", "false")
    if insecure not in _TRUE | _FALSE:
        raise ConfigError(f"{where}: insecure: must be true or false")
    return RepoCredentials(url=values["url"].strip(), kind=kind, secret=where.removeprefix("Secret "),
                           username=values.get("username", ""), password=values.get("password", ""),
                           ssh_private_key=values.get("sshPrivateKey", ""), insecure=insecure in _TRUE,
                           project=values.get("project", ""))


def _decoded(secret: Mapping[str, Any], where: str) -> dict[str, str]:
    """`data` base64-decoded, then `stringData` over it (as the API server merges them); empty values dropped."""
    values: dict[str, str] = {}
    data, string_data = secret.get("data") or {}, secret.get("stringData") or {}
    if not isinstance(data, Mapping) or not isinstance(string_data, Mapping):
        raise ConfigError(f"{where}: data and stringData must be maps")
    for key, encoded in data.items():
        try:
            values[str(key)] = base64.b64decode(str(encoded), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ConfigError(f"{where}: data.{key}: is not base64-encoded UTF-8 text") from None
    for key, text in string_data.items():
        if not isinstance(text, str):
            raise ConfigError(f"{where}: stringData.{key}: must be a string")
        values[str(key)] = text
    return {key: value for key, value in values.items() if value}


def match_credentials(url: str, credentials: Sequence[RepoCredentials], *, project: str = "") -> RepoCredentials | None:
    """What an app of `project` uses for `url`: the `repository` Secret for that URL, its missing
    credentials filled from the longest matching `repo-creds` prefix (as Argo CD does), or that
    `repo-creds` alone. Project-scoped credentials serve only their project's apps."""
    usable = [cred for cred in credentials if not cred.project or cred.project == project]
    wanted = normalize_git_url(url)
    repository = next((cred for cred in usable if cred.kind is CredentialKind.REPOSITORY
                       and normalize_git_url(cred.url) == wanted), None)
    templates = [cred for cred in usable if cred.kind is CredentialKind.REPO_CREDS and url.startswith(cred.url)]
    template = max(templates, key=lambda cred: len(cred.url), default=None)
    if repository is None or template is None or repository.has_credentials:
        return repository or template
    return replace(repository, username=template.username, password=template.password,
                   ssh_private_key=template.ssh_private_key)


def normalize_git_url(url: str) -> str:
    """Argo CD's comparison form: lowercase, scp-like `git@host:path` as `git@host/path`, no `ssh://`,
    no `.git` suffix."""
    url = url.strip().lower()
    if _SCP_LIKE.match(url) and "://" not in url:
        url = url.replace(":", "/", 1)
    return url.removeprefix("ssh://").removesuffix(".git")
