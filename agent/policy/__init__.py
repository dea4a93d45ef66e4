"""Pure decisions about who and what is permitted: projects, sync windows, API access.

    projects  is this repository, destination, kind permitted in the app's project? `violations`
              lists every rule an app's desired objects break (checked before anything is applied
              or pruned); `object_violation` checks one object (a prune candidate)
    windows   may the app sync now (Argo CD's sync windows), and when may it if not
    rbac      may this subject get, sync, roll back or override this app (casbin, Argo CD's model)
    gate      all of a project's rules for one sync in one answer (`check_sync`): the reconcile's call
    globs     the glob dialects Argo CD matches with

Nothing here does I/O; the clock is passed in. Imports only agent.model.
"""

from agent.policy.gate import SyncVerdict, check_sync
from agent.policy.projects import (
    IN_CLUSTER_NAME,
    IN_CLUSTER_SERVER,
    NamespacedLookup,
    Target,
    Violation,
    destination_permitted,
    find_project,
    kind_permitted,
    object_violation,
    repo_permitted,
    unknown_project,
    violations,
)
from agent.policy.rbac import PolicyError, Rbac, Subject, parse_policy_csv, project_role_lines
from agent.policy.windows import InvalidWindow, WindowDecision, check_window, decide

__all__ = [
    "IN_CLUSTER_NAME",
    "IN_CLUSTER_SERVER",
    "InvalidWindow",
    "NamespacedLookup",
    "PolicyError",
    "Rbac",
    "Subject",
    "SyncVerdict",
    "Target",
    "Violation",
    "WindowDecision",
    "check_sync",
    "check_window",
    "decide",
    "destination_permitted",
    "find_project",
    "kind_permitted",
    "object_violation",
    "parse_policy_csv",
    "project_role_lines",
    "repo_permitted",
    "unknown_project",
    "violations",
]
