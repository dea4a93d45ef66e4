"""Git sources: credentials, revisions, a shared ls-remote, the bare-repository cache, safe export.

    credentials.py  [[repositories]] matched by longest URL prefix → Access (secrets read at use)
    transport.py    dulwich clients for HTTP(S) and SSH (strict host keys); safe error messages
    resolver.py     branch / tag / SHA / HEAD against refs; single-flight ls-remote cache with a TTL
    cache.py        bare repositories under state_dir/repos/: fetch, verify, describe, export
    export.py       the tree walk that refuses `..`, absolute paths, escaping symlinks and oversize
    urls.py         redaction, normalization for webhooks, push ref ↔ revision matching
    git.py          GitSource, the one object the controller uses
"""

from agent.source.credentials import Access, CredentialStore, read_secret
from agent.source.export import ExportLimits
from agent.source.git import GitObserver, GitSource, SourceFiles, SourceOptions
from agent.source.urls import normalize_url, push_matches_revision, redact_url

__all__ = [
    "Access",
    "CredentialStore",
    "ExportLimits",
    "GitObserver",
    "GitSource",
    "SourceFiles",
    "SourceOptions",
    "normalize_url",
    "push_matches_revision",
    "read_secret",
    "redact_url",
]
