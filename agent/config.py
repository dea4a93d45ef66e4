"""TOML configuration → frozen dataclasses.

Every problem is reported as `FILE: table.key: problem`, and an unknown key is an
error rather than silently ignored: a typo in `prune` must not leave pruning off.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from agent.errors import ConfigError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_APP_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")

T = TypeVar("T")


def parse_duration(text: str) -> float:
    """Parse `500ms`, `5s`, `3m`, `1h30m` into seconds."""
    text = text.strip()
    pos = 0
    total = 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{text!r} is not a duration (examples: 500ms, 5s, 3m, 1h30m)")
    return total


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

    @property
    def listen_host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]") or "127.0.0.1"

    @property
    def listen_port(self) -> int:
        return int(self.listen.rpartition(":")[2])


@dataclass(frozen=True)
class AppSpec:
    name: str
    repo: str
    revision: str = "HEAD"
    path: str = "."
    namespace: str = "default"


@dataclass(frozen=True)
class Settings:
    agent: AgentSettings
    applications: tuple[AppSpec, ...]
    source: Path | None = None

    def app(self, name: str) -> AppSpec | None:
        return next((a for a in self.applications if a.name == name), None)


class _Table:
    """Reads one TOML table, remembering where it is for error messages."""

    def __init__(self, file: str, where: str, data: Mapping[str, Any]) -> None:
        self.file, self.where, self.data = file, where, data
        self.used: set[str] = set()

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.file}: {self.where}.{key}: {problem}")

    def get(self, key: str, kind: type[T], default: T | None = None, *, required: bool = False) -> T:
        self.used.add(key)
        if key not in self.data:
            if required or default is None:
                raise self.error(key, "is required")
            return default
        value = self.data[key]
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            raise self.error(key, f"must be {_type_name(kind)}, not {_type_name(type(value))} {value!r}")
        return value  # type: ignore[no-any-return]

    def convert(self, key: str, default: T, parse: Callable[[str], T]) -> T:
        if key not in self.data:
            self.used.add(key)
            return default
        text = self.get(key, str)
        try:
            return parse(text)
        except ValueError as exc:
            raise self.error(key, str(exc)) from exc

    def positive(self, key: str, default: int) -> int:
        value = self.get(key, int, default)
        if value < 1:
            raise self.error(key, f"must be at least 1, not {value}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _type_name(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "true or false", float: "a number", list: "an array",
            dict: "a table"}.get(kind, kind.__name__)


def _agent_settings(table: _Table) -> AgentSettings:
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
    )
    if settings.poll_interval <= 0:
        raise table.error("poll_interval", "must be greater than zero")
    table.finish()
    return settings


def _app_spec(table: _Table) -> AppSpec:
    name = table.get("name", str, required=True)
    if not _APP_NAME.match(name):
        raise table.error("name", f"{name!r} must be a DNS label (lowercase letters, digits and '-', at most 63)")
    path = table.get("path", str, ".")
    if path.startswith("/") or ".." in Path(path).parts:
        raise table.error("path", f"{path!r} must be relative to the repository and stay inside it")
    spec = AppSpec(
        name=name,
        repo=table.get("repo", str, required=True),
        revision=table.get("revision", str, "HEAD"),
        path=path,
        namespace=table.get("namespace", str, "default"),
    )
    table.finish()
    return spec


def parse_settings(data: Mapping[str, Any], *, file: str = "<config>") -> Settings:
    top = _Table(file, "", data)
    agent_data = top.get("agent", dict, {})
    agent = _agent_settings(_Table(file, "agent", agent_data))
    apps_data = top.get("applications", list, [])
    apps: list[AppSpec] = []
    for index, item in enumerate(apps_data):
        where = f"applications[{index}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{file}: {where}: must be a table ([[applications]])")
        app = _app_spec(_Table(file, where, item))
        if any(existing.name == app.name for existing in apps):
            raise ConfigError(f"{file}: {where}.name: {app.name!r} is used by another application")
        apps.append(app)
    unknown = sorted(set(data) - top.used)
    if unknown:
        raise ConfigError(f"{file}: {unknown[0]}: unknown table or key")
    return Settings(agent=agent, applications=tuple(apps), source=Path(file) if file != "<config>" else None)


def load_settings(path: Path) -> Settings:
    """Read and validate a configuration file."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    return parse_settings(data, file=str(path))
