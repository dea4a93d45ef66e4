"""dulwich clients built from a URL and an `Access`, and git failures turned into SourceErrors.

HTTP(S) goes through urllib3 with the entry's CA file or verification switched off
explicitly; SSH runs the OpenSSH client with strict host-key checking (only the
configured key, no agent, no prompt). Credentials are never put into a URL that
dulwich could echo in an exception.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlparse

import urllib3
from dulwich.client import (
    GitClient,
    HTTPUnauthorized,
    SSHGitClient,
    SSHVendor,
    SubprocessWrapper,
    Urllib3HttpGitClient,
    default_urllib3_manager,
    get_transport_and_path,
)
from dulwich.config import ConfigDict
from dulwich.errors import GitProtocolError, HangupException, NotGitRepository

from agent.errors import SourceError
from agent.source.credentials import Access
from agent.source.urls import redact_url, redact_urls_in, scp_like

NETWORK_ERRORS = (OSError, GitProtocolError, HangupException, HTTPUnauthorized, NotGitRepository)


class GitRequestError(SourceError):
    """A git request failed.

    `result` is the metric label (`auth_failed` or `failed`); `server_refused` says the
    server answered but refused what was asked (worth a full fetch instead of a shallow one).
    """

    def __init__(self, message: str, *, result: str = "failed", server_refused: bool = False) -> None:
        super().__init__(message)
        self.result = result
        self.server_refused = server_refused


def open_client(url: str, access: Access, *, timeout: float, key_dir: Path) -> tuple[GitClient, str]:
    """A client for `url` and the path to pass to it."""
    scp = scp_like(url)
    parsed = urlparse(url)
    if scp is not None or parsed.scheme in ("ssh", "git+ssh"):
        if scp is not None:
            user, host, path = scp
            port = None
        else:
            user, host, path, port = parsed.username or "", parsed.hostname or "", parsed.path, parsed.port
        vendor = StrictSSHVendor(access, timeout=timeout, key_dir=key_dir)
        client = SSHGitClient(host, port=port, username=access.username or user or None, vendor=vendor)
        return client, path
    if parsed.scheme in ("http", "https"):
        if access.insecure_skip_tls_verify:
            # Chosen explicitly in the config (and documented); not worth a warning on every request.
            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
        config = ConfigDict()
        if access.ca_file:
            config.set((b"http",), b"sslCAInfo", access.ca_file.encode())
        pool = default_urllib3_manager(
            config, base_url=url, timeout=timeout,
            cert_reqs="CERT_NONE" if access.insecure_skip_tls_verify else "CERT_REQUIRED",
        )
        # Credentials go to the client on their own, never in the URL: dulwich keeps a URL's user
        # information and would show it in its messages (a token may be the user name).
        bare = parsed._replace(netloc=parsed.netloc.rpartition("@")[2])
        http_client = Urllib3HttpGitClient.from_parsedurl(
            bare, username=access.username or None, password=access.password or None,
            pool_manager=cast(Any, pool),
        )
        return http_client, parsed.path
    return get_transport_and_path(url)


class StrictSSHVendor(SSHVendor):
    """Runs `ssh` with host keys checked strictly, only the configured key, and never a prompt."""

    def __init__(self, access: Access, *, timeout: float, key_dir: Path) -> None:
        self._access = access
        self._timeout = max(1, int(timeout))
        self._key_dir = key_dir

    def run_command(
        self,
        host: str,
        command: bytes,
        username: str | None = None,
        port: int | None = None,
        password: str | None = None,
        key_filename: str | None = None,
        ssh_command: str | None = None,
        protocol_version: int | None = None,
    ) -> SubprocessWrapper:
        args = ["ssh", "-x", "-T", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self._timeout}",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=3", *self._host_key_options()]
        key = self._access.ssh_key_file
        if self._access.ssh_key_data:
            key = inline_key_file(self._access.ssh_key_data, self._key_dir)
        elif key:
            key = private_key_copy(key, self._key_dir)
        if key:
            args += ["-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i", key]
        if port:
            args += ["-p", str(port)]
        args += ["-o", f"SetEnv=GIT_PROTOCOL=version={protocol_version or 2}"]
        destination = f"{username}@{host}" if username else host
        proc = subprocess.Popen(
            [*args, "--", destination, command],
            bufsize=0, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        return SubprocessWrapper(proc)

    def _host_key_options(self) -> list[str]:
        access = self._access
        if access.insecure_ignore_host_key:
            return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"]
        options = ["-o", "StrictHostKeyChecking=yes"]
        if access.known_hosts_file:
            options += ["-o", f"UserKnownHostsFile={access.known_hosts_file}", "-o", "GlobalKnownHostsFile=/dev/null"]
        return options


def private_key_copy(key_file: str, key_dir: Path) -> str:
    """The key file itself, or a 0600 copy when its mode is open (ssh refuses group/world-readable keys).

    Kubernetes mounts Secrets 0644 unless told otherwise; copying spares operators that trap.
    """
    try:
        mode = os.stat(key_file).st_mode
    except OSError as exc:
        raise SourceError(f"ssh_key_file {key_file!r}: cannot read: {exc.strerror}") from exc
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return key_file
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    data = Path(key_file).read_bytes()
    fd, name = tempfile.mkstemp(dir=key_dir, prefix="key-")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    target = key_dir / f"{hashlib.sha256(key_file.encode()).hexdigest()[:16]}.key"
    os.replace(name, target)
    return str(target)


def inline_key_file(key: str, key_dir: Path) -> str:
    """A 0600 file holding a key given inline (ssh reads keys from files only), under the cache's key
    directory, named by a digest of the key so that each key is written once."""
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = key if key.endswith("\n") else key + "\n"  # OpenSSH refuses a key without its final newline
    target = key_dir / f"inline-{hashlib.sha256(text.encode()).hexdigest()[:16]}.key"
    if not target.exists():
        fd, name = tempfile.mkstemp(dir=key_dir, prefix="key-")
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(name, target)
    return str(target)


def request_error(url: str, request: str, exc: BaseException, secrets: tuple[str, ...]) -> GitRequestError:
    """A SourceError naming the repository and the cause, with every secret scrubbed out."""
    where = redact_url(url)
    if isinstance(exc, HTTPUnauthorized):
        return GitRequestError(f"{where}: authentication refused (check username and password_env/password_file)",
                               result="auth_failed")
    if isinstance(exc, NotGitRepository):
        return GitRequestError(f"{where}: {request} failed: repository not found")
    reason = redact_urls_in(scrub(describe(exc), secrets))
    if _looks_like_auth(reason):
        return GitRequestError(f"{where}: {request} failed: {reason}", result="auth_failed")
    # Over HTTP a server that refuses a `want` (git's "not our ref") just hangs up.
    unreachable = any(text in reason for text in ("connect to host", "Could not resolve hostname"))
    refused = isinstance(exc, GitProtocolError) and not unreachable
    return GitRequestError(f"{where}: {request} failed: {reason}", server_refused=refused)


def describe(exc: BaseException) -> str:
    if isinstance(exc, HangupException) and exc.stderr_lines:
        lines = [line.decode("utf-8", "replace").strip() for line in exc.stderr_lines]
        if any("Host key verification failed" in line for line in lines):
            # ssh's banner is long; what matters is that the key is unknown or changed.
            return ("host key verification failed: the server's host key is not in the known hosts "
                    "(known_hosts_file) or does not match them")
        return "; ".join(line for line in lines if line and not line.startswith("@")) or "the remote end hung up"
    return " ".join(str(exc).split()) or type(exc).__name__


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _looks_like_auth(reason: str) -> bool:
    lowered = reason.lower()
    return any(word in lowered for word in (
        "permission denied", "host key verification failed", "unexpected http resp 403", "authentication",
    ))
