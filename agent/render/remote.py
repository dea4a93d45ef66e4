"""Which remote references a kustomization may make: pure decisions over strings.

kustomize fetches more than remote bases: every path it loads (a patch, a generator's
files, a replacement's source, an OpenAPI schema) may be an `http(s)://` URL, and a
`file://` reference is cloned with git, which reads any repository on the agent's disk
(the bare-repository cache of every other tenant among them). So every string in a
field kustomize loads from is checked here, not only `resources` and `bases`:

- `file://` is refused always: it reads the agent's own files.
- `http://` (and git's unauthenticated `git://`) is refused always: no integrity, and a
  blind request to any address the agent can reach (cloud metadata, the API server).
- `https://` and ssh (`ssh://`, `git@host:path`) are allowed only for a host or URL
  prefix listed in `[agent] allowed_remote_bases` (empty by default: nothing remote).
- Any other scheme (`s3::`, `gcs::`, `hg::`, …) is refused.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from agent.source.urls import redact_url, scp_like

# Keys whose values kustomize loads (a path, a list of paths, or `key=path` for generator files).
LOADER_KEYS = frozenset({
    "resources", "bases", "components", "generators", "transformers", "validators", "crds", "configurations",
    "patchesStrategicMerge", "path", "paths", "files", "envs", "env",
})
# Keys that hold data, not places to load from: not searched (an annotation may well be a URL).
DATA_KEYS = frozenset({
    "metadata", "commonLabels", "commonAnnotations", "labels", "literals", "options", "images", "replicas",
    "patch", "namespace", "namePrefix", "nameSuffix", "vars", "sortOptions", "buildMetadata", "helmCharts",
    "helmGlobals", "target", "source", "targets", "fieldSpecs",
})
_SCHEME = re.compile(r"(?:[a-z][a-z0-9+.-]*::)?[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_GETTER = re.compile(r"^[a-z][a-z0-9+.-]*::", re.IGNORECASE)
_QUERY_OPTIONS = re.compile(r"[?&](?:ref|version|submodules|timeout)=", re.IGNORECASE)
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d{1,5})?$", re.IGNORECASE)


@dataclass(frozen=True)
class RemoteBase:
    """One entry of `allowed_remote_bases`: a host, or a URL prefix (scheme optional)."""

    host: str  # lowercase, with the port when one is given
    path: str = ""  # "" or "/org/..." without a trailing slash
    scheme: str = ""  # "" (https or ssh), "https" or "ssh"

    @classmethod
    def parse(cls, entry: str) -> RemoteBase:
        """ValueError (with the reason) for an entry that is not `host`, `host/path` or `https|ssh://host/path`."""
        text = entry.strip()
        if "://" in text:
            scheme = text.split("://", 1)[0].lower()
            if scheme not in ("https", "ssh"):
                raise ValueError(f"{entry!r}: only https:// and ssh:// remote bases can be allowed")
            location = _location(text)
        else:
            scheme, location = "", _location("https://" + text)
        if location is None:
            raise ValueError(f"{entry!r}: not a host or URL prefix")
        return cls(host=location[0], path=location[1].rstrip("/"), scheme=scheme)

    def admits(self, scheme: str, host: str, path: str) -> bool:
        if (self.scheme and self.scheme != scheme) or host != self.host:
            return False
        return not self.path or path == self.path or path.startswith(self.path + "/")


def parse_allowed(entries: Sequence[str]) -> tuple[RemoteBase, ...]:
    return tuple(RemoteBase.parse(entry) for entry in entries)


def loader_strings(doc: Any) -> Iterator[tuple[str, str]]:
    """(key, value) for every string kustomize would load from, anywhere in a kustomization or a
    generator's or transformer's configuration."""
    stack: list[tuple[str, Any, bool]] = [("", doc, False)]
    while stack:
        key, value, loading = stack.pop()
        if isinstance(value, str):
            if loading and "\n" not in value:  # a string with a newline is an inline document, not a path
                yield key, value
        elif isinstance(value, dict):
            stack.extend((str(k), v, str(k) in LOADER_KEYS) for k, v in value.items() if str(k) not in DATA_KEYS)
        elif isinstance(value, list):
            stack.extend((key, item, loading) for item in value)


def remote_target(value: str, *, key: str) -> str | None:
    """The URL in a loaded value, if it names one; None for a local path.

    Generator `files`/`envs` entries may be `key=path`; the path part is what is loaded.
    """
    found = _SCHEME.search(value)
    if found is not None:
        return value[found.start():]
    if key in ("files", "envs", "env") and "=" in value:
        value = value.split("=", 1)[1]
    if _GETTER.match(value) or _QUERY_OPTIONS.search(value) or ("@" in value and scp_like(value) is not None):
        return value
    return None


def refusal(reference: str, allowed: Sequence[RemoteBase]) -> str | None:
    """Why a remote reference may not be fetched; None when an allowed base admits it."""
    text = reference.strip()
    getter = _GETTER.match(text)
    if getter is not None:
        if getter.group(0).lower() != "git::":
            return f"{getter.group(0)} references are refused: only git over https or ssh"
        text = text[getter.end():]
    lowered = text.lower()
    if lowered.startswith("file:"):
        return "file:// references are refused: they read the agent's own files"
    if lowered.startswith(("http://", "git://")):
        return "plain http:// and git:// references are refused: unencrypted, and a request to any address"
    scp = None if "://" in text else scp_like(text)
    if "://" in text:
        scheme = lowered.split("://", 1)[0]
        if scheme not in ("https", "ssh"):
            return f"{scheme}:// references are refused: only https and ssh remote bases can be allowed"
        location = _location(text)
    elif scp is not None:
        scheme, location = "ssh", _location(f"ssh://{scp[1]}/{scp[2]}")
    else:
        scheme, location = "https", _location("https://" + text)  # `github.com/org/repo`: kustomize uses https
    if location is None:
        return "not a URL the agent can check (no host, or `..` in its path)"
    if not allowed:
        return "remote references are off ([agent] allowed_remote_bases is empty)"
    host, path = location
    if not any(base.admits(scheme, host, path) for base in allowed):
        return f"{scheme}://{host}{path} is not under any of [agent] allowed_remote_bases"
    return None


def shown(reference: str) -> str:
    """A reference as messages show it: without credentials."""
    text = reference.strip()
    getter = _GETTER.match(text)
    prefix = getter.group(0) if getter else ""
    return prefix + redact_url(text[len(prefix):])


def _location(url: str) -> tuple[str, str] | None:
    """(host[:port] lowercase, path) of a URL; None when it cannot be read or its path climbs with `..`."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if port is not None:
        host = f"{host}:{port}"
    if not _HOST.match(host):
        return None
    path = unquote(parts.path)
    if any(segment in ("..", ".") for segment in path.split("/")) or "\\" in path:
        return None
    return host, path
