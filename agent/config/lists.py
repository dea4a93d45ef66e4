"""`[[repositories]]` (credentials by URL prefix) and `[[health_checks]]` (health rules by kind)."""

from __future__ import annotations

from dataclasses import dataclass

from agent.config.reader import Table
from agent.model import RepoSpec


@dataclass(frozen=True)
class HealthCheckSpec:
    """`[[health_checks]]`: judge one group/kind (`*`: every kind of the group) by a condition.

    Satisfies `agent.engine.health.HealthRule`; see there for what the fields mean.
    """

    kind: str
    group: str = ""
    condition: str = ""
    degraded_reasons: tuple[str, ...] = ()
    progressing_reasons: tuple[str, ...] = ()


def _repo_spec(table: Table) -> RepoSpec:
    url = table.get("url", str, required=True)
    if not url.strip():
        raise table.error("url", "must not be empty")
    spec = RepoSpec(
        url=url,
        username=table.get("username", str, ""),
        password_env=table.get("password_env", str, ""),
        password_file=table.path("password_file"),
        ssh_key_file=table.path("ssh_key_file"),
        known_hosts_file=table.path("known_hosts_file"),
        insecure_ignore_host_key=table.get("insecure_ignore_host_key", bool, False),
        ca_file=table.path("ca_file"),
        insecure_skip_tls_verify=table.get("insecure_skip_tls_verify", bool, False),
        webhook_secret_env=table.get("webhook_secret_env", str, ""),
        webhook_secret_file=table.path("webhook_secret_file"),
    )
    if spec.password_env and spec.password_file:
        raise table.error("password_file", "give password_env or password_file, not both")
    if (spec.password_env or spec.password_file) and not spec.username:
        raise table.error("username", "is required with a password or token (any name works for most token hosts)")
    if spec.webhook_secret_env and spec.webhook_secret_file:
        raise table.error("webhook_secret_file", "give webhook_secret_env or webhook_secret_file, not both")
    table.finish()
    return spec


def parse_repositories(tables: list[Table]) -> tuple[RepoSpec, ...]:
    specs: list[RepoSpec] = []
    for table in tables:
        spec = _repo_spec(table)
        if any(existing.url == spec.url for existing in specs):
            raise table.error("url", f"{spec.url!r} is used by another [[repositories]] entry")
        specs.append(spec)
    return tuple(specs)


def parse_health_checks(tables: list[Table]) -> tuple[HealthCheckSpec, ...]:
    specs: list[HealthCheckSpec] = []
    for table in tables:
        spec = HealthCheckSpec(
            kind=table.get("kind", str, required=True), group=table.get("group", str, ""),
            condition=table.get("condition", str, ""),
            degraded_reasons=tuple(table.strings("degraded_reasons")),
            progressing_reasons=tuple(table.strings("progressing_reasons")),
        )
        table.finish()
        if not spec.kind:
            raise table.error("kind", "must not be empty (use \"*\" for every kind of the group)")
        if any((existing.group, existing.kind) == (spec.group, spec.kind) for existing in specs):
            raise table.error("kind", f"{spec.group}/{spec.kind} already has a [[health_checks]] entry")
        specs.append(spec)
    return tuple(specs)
