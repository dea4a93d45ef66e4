"""What a configuration reload changes: a pure comparison of the running settings with the file's.

    diff_settings(running, loaded)       apps added, removed, changed; [agent] keys changed, and
                                         which of those need a restart; lists changed
    effective_settings(running, loaded)  the settings to run with: the file's, except the
                                         [agent] keys that cannot change in a running process
    desired_state_changed(old, new)      whether an app's change makes it a new desired state

[agent] keys are named as they are written in the file (`leader_election_name`, not
`leader_election.name`), so a warning can tell the operator exactly what to restart for.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, replace

from agent.config import AgentSettings, AppSpec, Settings

# Every [agent] key, as written in TOML → where AgentSettings keeps it.
AGENT_KEYS: dict[str, str] = {
    "listen": "listen",
    "state_dir": "state_dir",
    "poll_interval": "poll_interval",
    "poll_jitter": "poll_jitter",
    "kubeconfig": "kubeconfig",
    "context": "context",
    "max_concurrent_reconciles": "max_concurrent_reconciles",
    "max_concurrent_fetches": "max_concurrent_fetches",
    "kube_qps": "kube_qps",
    "kube_burst": "kube_burst",
    "git_timeout": "git_timeout",
    "max_repo_files": "max_repo_files",
    "max_file_size": "max_file_size",
    "max_repo_size": "max_repo_size",
    "webhook_secret_env": "webhook_secret_env",
    "webhook_secret_file": "webhook_secret_file",
    "webhook_max_body": "webhook_max_body",
    "history_limit": "history_limit",
    "insecure_no_auth": "insecure_no_auth",
    "credentials_namespace": "credentials_namespace",
    "metrics_families": "metrics_families",
    "kustomize_path": "render.kustomize_path",
    "render_timeout": "render.render_timeout",
    "max_concurrent_renders": "render.max_concurrent_renders",
    "allowed_remote_bases": "render.allowed_remote_bases",
    "max_render_bytes": "render.max_render_bytes",
    "max_render_nodes": "render.max_render_nodes",
    "leader_election": "leader_election.enabled",
    "leader_election_namespace": "leader_election.namespace",
    "leader_election_name": "leader_election.name",
    "leader_election_lease_duration": "leader_election.lease_duration",
    "leader_election_renew_deadline": "leader_election.renew_deadline",
    "leader_election_retry_period": "leader_election.retry_period",
    "sharding": "sharding.enabled",
    "sharding_name": "sharding.name",
    "advertise_url": "sharding.advertise_url",
}

# [agent] keys a running agent takes over on reload. Every other key is fixed at start-up:
# the listening socket, the state directory, the Kubernetes client and its rate limit, the
# lease, and the semaphores (max_concurrent_*), which operations in flight hold; resizing
# one would let old and new holders exceed the bound together.
RELOADABLE_AGENT_KEYS = frozenset({
    "poll_interval", "poll_jitter", "history_limit", "git_timeout", "max_repo_files", "max_file_size",
    "max_repo_size", "webhook_secret_env", "webhook_secret_file", "webhook_max_body", "metrics_families",
})

# [auth] keys a running agent takes over on reload. Adding or removing [auth] and its TLS files
# need a restart: the listening socket was checked and opened with them.
RELOADABLE_AUTH_KEYS = frozenset({"token_file", "policy_csv", "policy_default", "metrics_auth"})

# AppSpec fields that decide the desired objects: a change is a new desired state, synced as
# a new revision would be (Argo CD compares the source along with the revision the same way).
_DESIRED_STATE_FIELDS = ("repo", "revision", "path", "namespace", "directory", "kustomize", "cluster")


@dataclass(frozen=True)
class SettingsChange:
    added: tuple[AppSpec, ...] = ()  # the new specs
    removed: tuple[AppSpec, ...] = ()  # the running specs: their `prune_on_delete` decides
    changed: tuple[AppSpec, ...] = ()  # the new specs of apps whose spec differs in any field
    agent_keys: tuple[str, ...] = ()  # [agent] keys whose value differs
    restart_keys: tuple[str, ...] = ()  # the part of `agent_keys` that needs a restart
    repositories: bool = False  # [[repositories]] differ
    health_checks: bool = False  # [[health_checks]] differ
    projects: bool = False  # [[projects]] differ
    auth: bool = False  # [auth] differs in keys that take effect on reload
    auth_restart: bool = False  # [auth] was added or removed, or its TLS files changed: kept until a restart
    clusters: bool = False  # [[clusters]] differ
    notifications: bool = False  # [notifications] differs (all of it takes effect at once)

    @property
    def applied_keys(self) -> tuple[str, ...]:
        """[agent] keys that take effect without a restart."""
        return tuple(key for key in self.agent_keys if key not in self.restart_keys)

    @property
    def empty(self) -> bool:
        return self == SettingsChange()


def diff_settings(running: Settings, loaded: Settings) -> SettingsChange:
    """Compare the settings the agent runs with and the ones just read from the file."""
    old_apps = {app.name: app for app in running.applications}
    new_apps = {app.name: app for app in loaded.applications}
    agent_keys = changed_agent_keys(running.agent, loaded.agent)
    return SettingsChange(
        added=tuple(new_apps[name] for name in sorted(new_apps.keys() - old_apps.keys())),
        removed=tuple(old_apps[name] for name in sorted(old_apps.keys() - new_apps.keys())),
        changed=tuple(new_apps[name] for name in sorted(old_apps.keys() & new_apps.keys())
                      if old_apps[name] != new_apps[name]),
        agent_keys=agent_keys,
        restart_keys=tuple(key for key in agent_keys if key not in RELOADABLE_AGENT_KEYS),
        repositories=running.repositories != loaded.repositories,
        health_checks=running.health_checks != loaded.health_checks,
        projects=running.projects != loaded.projects,
        auth=not _auth_needs_restart(running, loaded) and running.auth != loaded.auth,
        auth_restart=_auth_needs_restart(running, loaded),
        clusters=running.clusters != loaded.clusters,
        notifications=running.notifications != loaded.notifications,
    )


def _auth_needs_restart(running: Settings, loaded: Settings) -> bool:
    old, new = running.auth, loaded.auth
    if old is None or new is None:
        return old is not new
    return (old.tls_cert_file, old.tls_key_file) != (new.tls_cert_file, new.tls_key_file)


def changed_agent_keys(running: AgentSettings, loaded: AgentSettings) -> tuple[str, ...]:
    """The [agent] keys whose values differ, in the order of AGENT_KEYS."""
    return tuple(key for key, where in AGENT_KEYS.items()
                 if operator.attrgetter(where)(running) != operator.attrgetter(where)(loaded))


def effective_settings(running: Settings, loaded: Settings) -> Settings:
    """The loaded settings, with every [agent] key that needs a restart kept at its running value, and
    [auth] kept whole when it was added, removed or its TLS files changed (an API never opens up on reload)."""
    fixed = {where.split(".")[0] for key, where in AGENT_KEYS.items() if key not in RELOADABLE_AGENT_KEYS}
    agent = replace(loaded.agent, **{name: getattr(running.agent, name) for name in fixed})
    auth = running.auth if _auth_needs_restart(running, loaded) else loaded.auth
    return replace(loaded, agent=agent, auth=auth)


def desired_state_changed(old: AppSpec, new: AppSpec) -> bool:
    """Whether the change renders other objects (source, path, revision, destination, overrides),
    rather than only changing how they are synced or compared."""
    return any(getattr(old, name) != getattr(new, name) for name in _DESIRED_STATE_FIELDS)
