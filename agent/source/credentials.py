"""Credentials for git requests: `[[repositories]]` entries and Argo CD's repository Secrets.

Which one a request uses, as Argo CD decides between its Secrets: a `repository` Secret whose
URL is the repository's wins; otherwise the longest URL prefix among `[[repositories]]` and
`repo-creds` Secrets (the configuration file wins a tie). A `repository` Secret without
credentials of its own takes them from the longest `repo-creds` prefix of it.

Secrets are read from their environment variable or file at each use (so rotation
needs no restart), or come from the Secrets as the watch last saw them, and live only in
`Access`, whose repr hides them. Every message names the repository and the *key* that
failed, never a value.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from agent.argocd.credentials import CredentialKind, RepoCredentials, match_credentials
from agent.errors import SourceError
from agent.model import RepoSpec
from agent.source.urls import normalize_url, redact_url, scp_like, strip_userinfo, under_prefix

MAX_SECRET_BYTES = 64 * 1024


@dataclass(frozen=True)
class Access:
    """How one request to one repository authenticates; neither `password` nor `username` (which may be a
    token) shows in repr."""

    username: str = field(default="", repr=False)
    password: str = field(default="", repr=False)
    ssh_key_file: str = ""
    ssh_key_data: str = field(default="", repr=False)  # a key given inline (an Argo CD Secret's sshPrivateKey)
    known_hosts_file: str = ""
    insecure_ignore_host_key: bool = False
    ca_file: str = ""
    insecure_skip_tls_verify: bool = False
    username_is_secret: bool = False  # an HTTPS URL's own user name: often a token (`https://ghp_…@host/…`)

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must be scrubbed from any text leaving the source layer."""
        found = [secret for secret in (self.password, self.ssh_key_data) if secret]
        if self.username_is_secret and self.username:
            found.append(self.username)
        return tuple(found)


def read_secret(repo: str, *, env: str, file: str, key_env: str, key_file: str) -> str:
    """The secret named by an environment variable or a file; "" when neither is configured."""
    if env:
        value = os.environ.get(env)
        if not value:
            raise SourceError(f"{redact_url(repo)}: {key_env} {env!r}: the environment variable is not set")
        return value
    if file:
        try:
            with open(file, "rb") as handle:
                data = handle.read(MAX_SECRET_BYTES + 1)
        except OSError as exc:
            raise SourceError(f"{redact_url(repo)}: {key_file} {file!r}: cannot read: {exc.strerror}") from exc
        if len(data) > MAX_SECRET_BYTES:
            raise SourceError(f"{redact_url(repo)}: {key_file} {file!r}: larger than {MAX_SECRET_BYTES} bytes")
        value = data.decode("utf-8", "replace").strip()
        if not value:
            raise SourceError(f"{redact_url(repo)}: {key_file} {file!r}: the file is empty")
        return value
    return ""


class CredentialStore:
    """Finds the `[[repositories]]` entry (or repository Secret) for a URL and turns it into an `Access`."""

    def __init__(self, repositories: Sequence[RepoSpec], secrets: Sequence[RepoCredentials] = ()) -> None:
        self.repositories = tuple(repositories)
        self.secrets = tuple(secrets)

    def match(self, url: str) -> RepoSpec | None:
        """The entry whose `url` is the longest prefix of `url` (credentials in either are ignored)."""
        bare = strip_userinfo(url)
        found: RepoSpec | None = None
        for spec in self.repositories:
            prefix = strip_userinfo(spec.url)
            if bare.startswith(prefix) and (found is None or len(prefix) > len(strip_userinfo(found.url))):
                found = spec
        return found

    def match_normalized(self, url: str) -> RepoSpec | None:
        """Like `match`, but comparing normalized URLs at path boundaries (for webhook payloads)."""
        wanted = normalize_url(url)
        found: RepoSpec | None = None
        found_length = -1
        for spec in self.repositories:
            prefix = normalize_url(spec.url)
            if under_prefix(wanted, prefix) and len(prefix) > found_length:
                found, found_length = spec, len(prefix)
        return found

    def access(self, url: str) -> Access:
        """Credentials for one request: the matching entry's or Secret's, else any user:password in the URL."""
        url_user, url_password = _userinfo(url)
        in_url = bool(url_user) and urlsplit(url).scheme.lower() in ("http", "https")
        spec = self.match(url)
        secret = match_credentials(strip_userinfo(url), self.secrets)
        if secret is not None and (secret.kind is CredentialKind.REPOSITORY or spec is None
                                   or len(secret.url) > len(strip_userinfo(spec.url))):
            return _secret_access(secret, url_user=url_user, url_password=url_password)
        if spec is None:
            return Access(username=url_user, password=url_password, username_is_secret=in_url)
        password = read_secret(url, env=spec.password_env, file=spec.password_file,
                               key_env="password_env", key_file="password_file")
        return Access(
            username=spec.username or url_user,
            password=password or url_password,
            username_is_secret=in_url and not spec.username,
            ssh_key_file=spec.ssh_key_file,
            known_hosts_file=spec.known_hosts_file,
            insecure_ignore_host_key=spec.insecure_ignore_host_key,
            ca_file=spec.ca_file,
            insecure_skip_tls_verify=spec.insecure_skip_tls_verify,
        )


def _secret_access(secret: RepoCredentials, *, url_user: str, url_password: str) -> Access:
    """An Argo CD Secret's credentials; `insecure` skips TLS verification and the SSH host key check."""
    return Access(username=secret.username or url_user, password=secret.password or url_password,
                  ssh_key_data=secret.ssh_private_key, insecure_skip_tls_verify=secret.insecure,
                  insecure_ignore_host_key=secret.insecure)


def _userinfo(url: str) -> tuple[str, str]:
    scp = scp_like(url)
    if scp is not None:
        return scp[0], ""
    if "://" not in url:
        return "", ""
    parts = urlsplit(url)
    return unquote(parts.username or ""), unquote(parts.password or "")
