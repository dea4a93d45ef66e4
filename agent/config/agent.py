"""`[agent]`: how the process runs."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from agent.config.reader import Table, parse_duration


@dataclass(frozen=True)
class RenderSettings:
    """The render keys of `[agent]`: which kustomize, how long one render may take, how many at once."""

    kustomize_path: str = ""  # empty: `kustomize` on PATH, else `kubectl kustomize`
    render_timeout: float = 60.0
    max_concurrent_renders: int = 4


@dataclass(frozen=True)
class AgentSettings:
    listen: str = "127.0.0.1:8080"
    state_dir: Path = Path("/var/lib/gitops-agent")
    poll_interval: float = 180.0
    poll_jitter: float = 30.0
    kubeconfig: str = ""
    context: str = ""
    max_concurrent_reconciles: int = 20
    max_concurrent_fetches: int = 4
    git_timeout: float = 60.0
    max_repo_files: int = 10_000
    max_file_size: int = 4 * 1024 * 1024
    max_repo_size: int = 64 * 1024 * 1024
    webhook_secret_env: str = ""
    webhook_secret_file: str = ""
    webhook_max_body: int = 1024 * 1024
    render: RenderSettings = RenderSettings()

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])


def parse_agent(table: Table) -> AgentSettings:
    defaults = AgentSettings()
    listen = table.get("listen", str, defaults.listen)
    if not re.fullmatch(r"(\[[0-9a-fA-F:]+\]|[^:\s]*):\d{1,5}", listen):
        raise table.error("listen", f"must be HOST:PORT, not {listen!r}")
    settings = AgentSettings(
        listen=listen,
        state_dir=Path(table.get("state_dir", str, str(defaults.state_dir))),
        poll_interval=table.convert("poll_interval", defaults.poll_interval, parse_duration),
        poll_jitter=table.convert("poll_jitter", defaults.poll_jitter, parse_duration),
        kubeconfig=table.get("kubeconfig", str, defaults.kubeconfig),
        context=table.get("context", str, defaults.context),
        max_concurrent_reconciles=table.positive("max_concurrent_reconciles", defaults.max_concurrent_reconciles),
        max_concurrent_fetches=table.positive("max_concurrent_fetches", defaults.max_concurrent_fetches),
        git_timeout=table.convert("git_timeout", defaults.git_timeout, parse_duration),
        max_repo_files=table.positive("max_repo_files", defaults.max_repo_files),
        max_file_size=table.size("max_file_size", defaults.max_file_size),
        max_repo_size=table.size("max_repo_size", defaults.max_repo_size),
        webhook_secret_env=table.get("webhook_secret_env", str, defaults.webhook_secret_env),
        webhook_secret_file=table.get("webhook_secret_file", str, defaults.webhook_secret_file),
        webhook_max_body=table.size("webhook_max_body", defaults.webhook_max_body),
        render=_render_settings(table),
    )
    if settings.webhook_secret_env and settings.webhook_secret_file:
        raise table.error("webhook_secret_file", "give webhook_secret_env or webhook_secret_file, not both")
    if settings.git_timeout <= 0:
        raise table.error("git_timeout", "must be greater than zero")
    if settings.poll_interval <= 0:
        raise table.error("poll_interval", "must be greater than zero")
    table.finish()
    return settings


def _render_settings(table: Table) -> RenderSettings:
    """The render keys of `[agent]`."""
    defaults = RenderSettings()
    settings = RenderSettings(
        kustomize_path=table.get("kustomize_path", str, defaults.kustomize_path),
        render_timeout=table.convert("render_timeout", defaults.render_timeout, parse_duration),
        max_concurrent_renders=table.positive("max_concurrent_renders", defaults.max_concurrent_renders),
    )
    if settings.render_timeout <= 0:
        raise table.error("render_timeout", "must be greater than zero")
    return settings
