"""Repository URLs: redaction for messages, normalization for matching, and push refs against revisions.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# `user@host:path` (scp-like ssh), but not a Windows drive or a URL with a scheme.
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[^@/:\[\]]{2,}|\[[^\]]+\]):(?P<path>(?!//).*)$")
_DEFAULT_PORTS = {"http": 80, "https": 443, "ssh": 22, "git+ssh": 22, "git": 9418}
# Query parameters that carry credentials (GitLab's private_token, OAuth's access_token, signed URLs…).
_SECRET_PARAMETER = re.compile(
    r"(?i)^(?:access_token|private_token|oauth_token|id_token|token|auth|authorization|password|passwd|pwd|"
    r"secret|client_secret|key|api_key|apikey|sig|signature|x-amz-signature|x-amz-credential|"
    r"x-amz-security-token|x-goog-signature|x-goog-credential)$")
# A URL's `scheme://userinfo@` in running text (an error message from git or kustomize).
_USERINFO_IN_TEXT = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]*@")
_QUERY_IN_TEXT = re.compile(r"(?i)([?&][a-z0-9_.-]+=)([^&\s#'\"]*)")


def redact_url(url: str) -> str:
    """The URL without any user information or credential-like query parameter, fit for logs,
    messages, metrics and the API.

    All of the user information goes, not only a password: `https://ghp_TOKEN@github.com/…`
    carries its token as the user name. An scp-like `git@host:path` loses its user too.
    """
    scp = scp_like(url)
    if scp is not None:
        return f"{scp[1]}:{scp[2]}"
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, _redact_query(parts.query), parts.fragment))


def redact_urls_in(text: str) -> str:
    """Running text with the user information and credential-like query values of every URL in it removed."""
    text = _USERINFO_IN_TEXT.sub(r"\1", text)
    return _QUERY_IN_TEXT.sub(lambda m: m.group(1) + ("***" if _SECRET_PARAMETER.match(m.group(1)[1:-1])
                                                        else m.group(2)), text)


def _redact_query(query: str) -> str:
    if not query:
        return query
    kept = []
    for pair in query.split("&"):
        name, has_value, _ = pair.partition("=")
        kept.append(f"{name}=***" if has_value and _SECRET_PARAMETER.match(name) else pair)
    return "&".join(kept)


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
