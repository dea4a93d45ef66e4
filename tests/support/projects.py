"""The payments team's AppProject (from their Argo CD design) as `[[projects]]` TOML, for tests and docs checks.

Only what a test must vary is a parameter: the repository (the seed names GitHub; tests use the
local git server) and the namespace prefix (tests run in namespaces of their own).
"""

from __future__ import annotations

import json


def seed_project_toml(*, name: str = "payments-team", repo: str = "https://github.com/payments-engine/gitops.git",
                      namespace: str = "payments", windows: str = "") -> str:
    """`[[projects]]` as the seed's AppProject says, plus `windows` ([[projects.sync_windows]] tables)."""
    return f"""[[projects]]
name = {json.dumps(name)}
description = "Payments Team Services"
source_repos = [{json.dumps(repo)}]
destinations = [
  {{ namespace = {json.dumps(namespace)}, server = "https://kubernetes.default.svc" }},
  {{ namespace = {json.dumps(namespace + "-*")}, server = "https://kubernetes.default.svc" }},
]
cluster_resource_whitelist = [{{ group = "", kind = "Namespace" }}]
namespace_resource_whitelist = [
  {{ group = "apps", kind = "Deployment" }},
  {{ group = "", kind = "Service" }},
  {{ group = "", kind = "ConfigMap" }},
]

[[projects.roles]]
name = "developer"
description = "Developers can view and sync"
policies = [
  "p, proj:{name}:developer, applications, get, *, allow",
  "p, proj:{name}:developer, applications, sync, *, allow",
]

[[projects.roles]]
name = "admin"
description = "Full access"
policies = ["p, proj:{name}:admin, applications, *, *, allow"]

{windows}"""
