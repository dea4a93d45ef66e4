"""Git sources: resolve revisions, fetch into a bare-repository cache, export an app's files."""

from agent.source.git import GitSource, SourceFiles, redact_url

__all__ = ["GitSource", "SourceFiles", "redact_url"]
