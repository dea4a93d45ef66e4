"""What the controller reports after taking reloaded settings, and the git options built from [agent]."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.config import AgentSettings
from agent.config.diff import SettingsChange
from agent.controller.teardown import Teardown
from agent.source import ExportLimits, SourceOptions


@dataclass(frozen=True)
class ReloadSummary:
    change: SettingsChange
    # Per app removed with `prune_on_delete = true`: what was deleted, kept, or failed.
    teardowns: dict[str, Teardown] = field(default_factory=dict)


def source_options(agent: AgentSettings) -> SourceOptions:
    """How the git source behaves, from `[agent]`; one ls-remote per repository per poll interval."""
    return SourceOptions(
        max_concurrent_fetches=agent.max_concurrent_fetches,
        timeout=agent.git_timeout,
        ls_remote_ttl=agent.poll_interval,
        limits=ExportLimits(max_files=agent.max_repo_files, max_file_bytes=agent.max_file_size,
                            max_total_bytes=agent.max_repo_size, max_seconds=agent.git_timeout),
    )
