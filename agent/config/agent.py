"""`[agent]`: how the process runs."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from agent.config.reader import Table, parse_duration
from agent.model import RenderSettings
from agent.model.clusters import DEFAULT_KUBE_BURST, DEFAULT_KUBE_QPS

# A host (`github.com`, `git.example.com:8443`), optionally with a path, or such a URL prefix
# with https:// or ssh://. Never http:// or file:// (see agent.render.remote).
_REMOTE_BASE = re.compile(r"(?:(?:https|ssh)://(?:[^@/\s]+@)?)?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::\d{1,5})?"
                          r"(?:/\S*)?")
_NAMESPACE = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
# gitops_agent_* (ours) and argocd_* (Argo CD's names, for its dashboards and alert rules).
METRICS_FAMILIES = ("gitops_agent", "argocd")


@dataclass(frozen=True)
class LeaderElectionSettings:
    """The leader-election keys of `[agent]`: a `coordination.k8s.io/v1` Lease, client-go's timings."""

    enabled: bool = False
    namespace: str = ""  # empty: $POD_NAMESPACE, else the service account's namespace
    name: str = "gitops-agent-leader"
    lease_duration: float = 15.0  # how long followers wait after the last renewal they saw
    renew_deadline: float = 10.0  # the leader stops writing when it could not renew for this long
    retry_period: float = 2.0  # between attempts to acquire or renew


@dataclass(frozen=True)
class ShardingSettings:
    """`sharding = true`: every replica does work, each the apps its buckets hold (agent.shard).
    The member Leases use leader election's namespace and timings."""

    enabled: bool = False
    name: str = "gitops-agent"  # prefix of the member Leases and the shared-state ConfigMaps
    advertise_url: str = ""  # how peers reach this replica's API; empty: http(s)://$POD_IP:<listen port>


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
    kube_qps: int = DEFAULT_KUBE_QPS  # 0: adaptive (agent.kube.ratelimit); N: a fixed N requests per second
    kube_burst: int = DEFAULT_KUBE_BURST
    git_timeout: float = 60.0
    max_repo_files: int = 10_000
    max_file_size: int = 4 * 1024 * 1024
    max_repo_size: int = 64 * 1024 * 1024
    webhook_secret_env: str = ""
    webhook_secret_file: str = ""
    webhook_max_body: int = 1024 * 1024
    history_limit: int = 50  # sync history entries kept per app
    insecure_no_auth: bool = False  # serve an open API (no [auth]) on a non-loopback address
    # Where Argo CD-style repository credentials live (Secrets labelled argocd.argoproj.io/secret-type:
    # repository or repo-creds); empty: none are read.
    credentials_namespace: str = ""
    metrics_families: frozenset[str] = frozenset(METRICS_FAMILIES)  # which metric names /metrics shows
    render: RenderSettings = field(default_factory=RenderSettings)
    leader_election: LeaderElectionSettings = LeaderElectionSettings()
    sharding: ShardingSettings = ShardingSettings()

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
        kubeconfig=table.path("kubeconfig", defaults.kubeconfig),
        context=table.get("context", str, defaults.context),
        max_concurrent_reconciles=table.positive("max_concurrent_reconciles", defaults.max_concurrent_reconciles),
        max_concurrent_fetches=table.positive("max_concurrent_fetches", defaults.max_concurrent_fetches),
        kube_qps=table.non_negative("kube_qps", defaults.kube_qps),
        kube_burst=table.positive("kube_burst", defaults.kube_burst),
        git_timeout=table.convert("git_timeout", defaults.git_timeout, parse_duration),
        max_repo_files=table.positive("max_repo_files", defaults.max_repo_files),
        max_file_size=table.size("max_file_size", defaults.max_file_size),
        max_repo_size=table.size("max_repo_size", defaults.max_repo_size),
        webhook_secret_env=table.get("webhook_secret_env", str, defaults.webhook_secret_env),
        webhook_secret_file=table.path("webhook_secret_file", defaults.webhook_secret_file),
        webhook_max_body=table.size("webhook_max_body", defaults.webhook_max_body),
        history_limit=table.positive("history_limit", defaults.history_limit),
        insecure_no_auth=table.get("insecure_no_auth", bool, defaults.insecure_no_auth),
        credentials_namespace=table.get("credentials_namespace", str, defaults.credentials_namespace),
        metrics_families=_metrics_families(table),
        render=_render_settings(table),
        leader_election=_leader_election_settings(table),
        sharding=_sharding_settings(table),
    )
    if settings.webhook_secret_env and settings.webhook_secret_file:
        raise table.error("webhook_secret_file", "give webhook_secret_env or webhook_secret_file, not both")
    if settings.credentials_namespace and not _NAMESPACE.fullmatch(settings.credentials_namespace):
        raise table.error("credentials_namespace", f"must be a namespace name, not {settings.credentials_namespace!r}")
    if settings.git_timeout <= 0:
        raise table.error("git_timeout", "must be greater than zero")
    if settings.poll_interval <= 0:
        raise table.error("poll_interval", "must be greater than zero")
    if settings.sharding.enabled and settings.leader_election.enabled:
        raise table.error("sharding", "replaces leader election (every replica works, on the apps it owns): set "
                                      "leader_election = false; sharding uses the leader_election_namespace and "
                                      "timing keys")
    table.finish()
    return settings


def _metrics_families(table: Table) -> frozenset[str]:
    if "metrics_families" not in table.data:
        table.used.add("metrics_families")
        return AgentSettings().metrics_families
    families = table.strings("metrics_families")
    unknown = sorted(set(families) - set(METRICS_FAMILIES))
    if unknown:
        raise table.error("metrics_families", f"unknown family {unknown[0]!r} (known: {', '.join(METRICS_FAMILIES)})")
    return frozenset(families)


def _render_settings(table: Table) -> RenderSettings:
    """The render keys of `[agent]`."""
    defaults = RenderSettings()
    settings = RenderSettings(
        kustomize_path=table.get("kustomize_path", str, defaults.kustomize_path),
        render_timeout=table.convert("render_timeout", defaults.render_timeout, parse_duration),
        max_concurrent_renders=table.positive("max_concurrent_renders", defaults.max_concurrent_renders),
        allowed_remote_bases=tuple(table.strings("allowed_remote_bases")),
        max_render_bytes=table.size("max_render_bytes", defaults.max_render_bytes),
        max_render_nodes=table.positive("max_render_nodes", defaults.max_render_nodes),
    )
    if settings.render_timeout <= 0:
        raise table.error("render_timeout", "must be greater than zero")
    for entry in settings.allowed_remote_bases:
        path = entry.split("://", 1)[-1].partition("/")[2]
        if not _REMOTE_BASE.fullmatch(entry) or ".." in path.split("/"):
            raise table.error("allowed_remote_bases", f"{entry!r} must be a host (github.com) or an https:// or "
                                                      "ssh:// URL prefix (plain http:// and file:// are never allowed)")
    return settings


def _leader_election_settings(table: Table) -> LeaderElectionSettings:
    """The `leader_election*` keys of `[agent]`; durations must nest as client-go requires."""
    defaults = LeaderElectionSettings()
    settings = LeaderElectionSettings(
        enabled=table.get("leader_election", bool, defaults.enabled),
        namespace=table.get("leader_election_namespace", str, defaults.namespace),
        name=table.get("leader_election_name", str, defaults.name),
        lease_duration=table.convert("leader_election_lease_duration", defaults.lease_duration, parse_duration),
        renew_deadline=table.convert("leader_election_renew_deadline", defaults.renew_deadline, parse_duration),
        retry_period=table.convert("leader_election_retry_period", defaults.retry_period, parse_duration),
    )
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", settings.name):
        raise table.error("leader_election_name", f"must be a DNS subdomain name, not {settings.name!r}")
    if settings.namespace and not _NAMESPACE.fullmatch(settings.namespace):
        raise table.error("leader_election_namespace", f"must be a namespace name, not {settings.namespace!r}")
    if settings.retry_period <= 0:
        raise table.error("leader_election_retry_period", "must be greater than zero")
    if settings.renew_deadline <= settings.retry_period * 1.2:
        raise table.error("leader_election_renew_deadline",
                          "must be longer than 1.2 times leader_election_retry_period (renewals are jittered)")
    if settings.lease_duration <= settings.renew_deadline:
        raise table.error("leader_election_lease_duration", "must be longer than leader_election_renew_deadline")
    return settings


def _sharding_settings(table: Table) -> ShardingSettings:
    """The `sharding*` keys and `advertise_url` of `[agent]`."""
    defaults = ShardingSettings()
    settings = ShardingSettings(
        enabled=table.get("sharding", bool, defaults.enabled),
        name=table.get("sharding_name", str, defaults.name),
        advertise_url=table.get("advertise_url", str, defaults.advertise_url),
    )
    # Objects are named `<name>-member-<identity>`, `<name>-shards` and `<name>-state-<bucket>`.
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?", settings.name):
        raise table.error("sharding_name", f"must be a DNS label of at most 40 characters, not {settings.name!r}")
    if settings.advertise_url and not re.fullmatch(r"https?://[^/\s?#]+", settings.advertise_url):
        raise table.error("advertise_url", f"must be http(s)://HOST:PORT (no path), not {settings.advertise_url!r}")
    return settings
