"""Repository URLs: redaction for messages, normalization for matching, and push refs against revisions.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# `user@host:path` (scp-like ssh), but not a Windows drive or a URL with a scheme.
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:\[\]]{2,}|\[[^\]]+\]):(?P<path>(?!//).*)$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git+ssh": 22, "git": 9418}


def redact_url(url: str) -> str:
    """The URL without a password or token, fit for logs, messages, metrics and the API."""
    parts = urlsplit(url)
    if "://" not in url or "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    name, has_password, _ = user.partition(":")
    netloc = f"{name}:***@{host}" if has_password else f"{name}@{host}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def strip_userinfo(url: str) -> str:
    """The URL without `user:password@`; scp-like and local paths are returned unchanged."""
    parts = urlsplit(url)
    if "://" not in url or "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def scp_like(url: str) -> tuple[str, str, str] | None:
    """`git@host:org/repo.git` → (user, host, path); None for anything else."""
    if "://" in url:
        return None
    match = _SCP_LIKE.match(url)
    if match is None:
        return None
    return match.group("user") or "", match.group("host"), match.group("path")


def normalize_url(url: str) -> str:
    """A comparable form of a repository URL: `host[:port]/path`, lowercase, no user, no `.git`.

    `https://GitHub.com/Org/Repo.git/`, `git@github.com:org/repo` and
    `ssh://git@github.com/org/repo` all become `github.com/org/repo`, so a webhook's
    `clone_url`, `html_url` or `ssh_url` finds the apps configured with any of them.
    A port is kept only when it is not the scheme's default.
    """
    text = url.strip()
    scp = scp_like(text)
    if scp is not None:
        host, path = scp[1], scp[2]
    else:
        parts = urlsplit(text)
        host, path = parts.hostname or "", parts.path
        try:
            port = parts.port
        except ValueError:
            port = None
        if port is not None and port != _DEFAULT_PORTS.get(parts.scheme.lower()):
            host = f"{host}:{port}"
    path = path.strip("/").removeprefix("~/")
    path = path.removesuffix(".git").rstrip("/")
    return f"{host}/{path}".lower() if host else path.lower()


def under_prefix(normalized_url: str, normalized_prefix: str) -> bool:
    """Whether a normalized URL is the prefix or below it (path boundaries respected)."""
    return normalized_url == normalized_prefix or normalized_url.startswith(normalized_prefix.rstrip("/") + "/")


def push_matches_revision(pushed_ref: str, revision: str) -> bool:
    """Whether a push to `pushed_ref` can move what an app's `revision` names.

    An empty ref (a webhook that names none) matches everything; `HEAD` follows
    whichever branch is the default, so any branch push matches it. A commit SHA
    never moves.
    """
    if not pushed_ref:
        return True
    if revision == "HEAD":
        return pushed_ref.startswith("refs/heads/") or "/" not in pushed_ref
    for prefix in ("refs/heads/", "refs/tags/"):
        if pushed_ref.startswith(prefix):
            return revision in (pushed_ref, pushed_ref.removeprefix(prefix))
    return revision in (pushed_ref, f"refs/heads/{pushed_ref}", f"refs/tags/{pushed_ref}")
