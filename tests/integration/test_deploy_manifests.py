"""helm-free-manifests/ against the real API server: accepted by a server-side dry run and a real
apply, the Deployment rolls out (on kwok nodes), and the service account may do exactly what
the agent needs.

Each test applies its own rendering (unique namespace and name prefix) and deletes it.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from agent.kube import KubeClient
from tests.integration.deploy_support import (
    API_TOKENS_SECRET,
    MANIFESTS,
    Deployed,
    apply,
    can_i,
    create_namespace,
    kustomize,
    render,
)
from tests.integration.helpers import eventually
from tests.support.cluster import LocalCluster

# What the agent does, as `kubectl auth can-i` arguments, in any namespace (cluster-wide variant).
AGENT_VERBS = [
    ("list", "deployments.apps", "--all-namespaces"), ("watch", "configmaps", "--all-namespaces"),
    ("get", "secrets", "-n", "default"), ("create", "services", "-n", "default"),
    ("patch", "deployments.apps", "-n", "kube-system"), ("delete", "jobs.batch", "-n", "default"),
    ("patch", "customresourcedefinitions.apiextensions.k8s.io"), ("create", "namespaces"),
    ("patch", "clusterroles.rbac.authorization.k8s.io"), ("escalate", "roles.rbac.authorization.k8s.io"),
]
# What it never needs.
REFUSED = [
    ("update", "deployments.apps", "-n", "default"), ("deletecollection", "pods", "-n", "default"),
    ("impersonate", "users"), ("impersonate", "serviceaccounts", "-n", "default"),
    ("approve", "certificatesigningrequests.certificates.k8s.io"), ("update", "leases.coordination.k8s.io", "-A"),
    ("get", "/metrics"), ("get", "/logs"),
]


def test_shipped_kustomizations_build_with_the_documented_shape(cluster: LocalCluster) -> None:
    default = kustomize(MANIFESTS)
    kinds = sorted(f"{o['kind']}/{o['metadata']['name']}" for o in default)
    assert [k.rpartition("-")[0] if k.startswith("ConfigMap/") else k for k in kinds] == [
        "ClusterRole/gitops-agent", "ClusterRoleBinding/gitops-agent", "ConfigMap/gitops-agent-config",
        "Deployment/gitops-agent", "Namespace/gitops-agent", "NetworkPolicy/gitops-agent",
        "PersistentVolumeClaim/gitops-agent-state", "Role/gitops-agent-leader-election",
        "RoleBinding/gitops-agent-leader-election", "Service/gitops-agent", "ServiceAccount/gitops-agent",
    ]
    namespaced = {f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}"
                  for o in kustomize(MANIFESTS / "namespaced")}
    assert {"ClusterRole//gitops-agent-namespaced", "RoleBinding/team-a/gitops-agent",
            "RoleBinding/team-b/gitops-agent"} <= namespaced
    assert not any(k.startswith("ClusterRoleBinding/") for k in namespaced)


def test_the_pod_runs_hardened_with_exactly_its_own_token(cluster: LocalCluster) -> None:
    deployment = next(o for o in kustomize(MANIFESTS) if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert {"cpu", "memory"} <= set(container["resources"]["requests"]) and "memory" in container["resources"]["limits"]
    tokens = [source for volume in pod["volumes"] for source in (volume.get("projected") or {}).get("sources", [])
              if "serviceAccountToken" in source]
    assert len(tokens) == 1 and tokens[0]["serviceAccountToken"]["expirationSeconds"] == 3600
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/var/run/secrets/kubernetes.io/serviceaccount", "/tmp", "/var/lib/gitops-agent"} <= mounts


def test_cluster_wide_variant_is_accepted_and_grants_exactly_the_agents_verbs(
    cluster: LocalCluster, tmp_path: Path, deployments: list[Deployed]
) -> None:
    deployed = render(tmp_path, rbac="rbac-cluster", state="")  # the default: state on a PVC
    deployments.append(deployed)
    apply(cluster, deployed, tmp_path)
    user = deployed.user
    for args in AGENT_VERBS:
        assert can_i(cluster, user, *args), f"{user} should be allowed: {args}"
    for args in REFUSED:
        assert not can_i(cluster, user, *args), f"{user} must not be allowed: {args}"
    lease = ("leases.coordination.k8s.io/gitops-agent-leader", "-n", deployed.namespace)
    assert can_i(cluster, user, "update", *lease) and can_i(cluster, user, "get", *lease)
    assert can_i(cluster, user, "create", "leases.coordination.k8s.io", "-n", deployed.namespace)
    assert not can_i(cluster, user, "update", "leases.coordination.k8s.io/other", "-n", deployed.namespace)
    assert not can_i(cluster, user, "update", "leases.coordination.k8s.io/gitops-agent-leader", "-n", "default")
    pvc = cluster.kubectl("get", "pvc", "-n", deployed.namespace, f"{deployed.prefix}gitops-agent-state",
                          "-o", "jsonpath={.status.phase}").stdout
    assert pvc == "Pending"  # no provisioner on this cluster; a real one binds it


def test_the_api_is_behind_tokens_from_a_secret_and_open_only_to_namespaces_that_need_it(
    cluster: LocalCluster,
) -> None:
    objects = kustomize(MANIFESTS)
    pod = next(o for o in objects if o["kind"] == "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["api-tokens"]["secret"]["secretName"] == API_TOKENS_SECRET
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["api-tokens"]["mountPath"] == "/etc/gitops-agent-tokens" and mounts["api-tokens"]["readOnly"]
    config = next(o for o in objects if o["kind"] == "ConfigMap")["data"]["config.toml"]
    assert 'token_file = "/etc/gitops-agent-tokens/tokens.csv"' in config
    for probe in ("livenessProbe", "readinessProbe"):
        assert "httpHeaders" not in container[probe]["httpGet"], "probes need no token"
    policy = next(o for o in objects if o["kind"] == "NetworkPolicy")["spec"]
    (ingress,) = policy["ingress"]
    assert ingress["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}},
        {"namespaceSelector": {"matchLabels": {"gitops-agent.io/api-access": "true"}}},
    ]


async def available_replicas(cluster: LocalCluster, deployed: Deployed, replicas: int) -> None:
    """Wait until the agent's Deployment has `replicas` available."""
    name = f"{deployed.prefix}gitops-agent"

    async def available() -> bool:
        out = cluster.kubectl("get", "deployment", "-n", deployed.namespace, name,
                              "-o", "jsonpath={.status.availableReplicas}").stdout
        return out == str(replicas)

    await eventually(available, within=30, interval=0.5, what=f"{replicas} available replicas")


async def test_ha_variant_rolls_out_two_ready_replicas(
    cluster: LocalCluster, tmp_path: Path, deployments: list[Deployed]
) -> None:
    deployed = render(tmp_path, rbac="rbac-cluster", extra=["ha"])
    deployments.append(deployed)
    assert not any(o["kind"] == "PersistentVolumeClaim" for o in deployed.objects)
    apply(cluster, deployed, tmp_path)
    name = f"{deployed.prefix}gitops-agent"
    await available_replicas(cluster, deployed, 2)
    spec = cluster.kubectl("get", "deployment", "-n", deployed.namespace, name, "-o", "json").stdout
    assert '"readOnlyRootFilesystem": true' in spec and '"maxUnavailable": 0' in spec


async def test_sharded_variant_rolls_out_three_replicas_that_may_keep_their_leases_and_state(
    cluster: LocalCluster, tmp_path: Path, deployments: list[Deployed]
) -> None:
    deployed = render(tmp_path, rbac="rbac-cluster", extra=["sharded"])
    deployments.append(deployed)
    config = deployed.one("ConfigMap")["data"]["config.toml"]
    assert "\nsharding = true" in config and "\nleader_election = false" in config
    pod = deployed.one("Deployment")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert pod["affinity"]["podAntiAffinity"]
    assert deployed.one("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    ingress = deployed.one("NetworkPolicy")["spec"]["ingress"]
    assert any("podSelector" in source for rule in ingress for source in rule["from"]), "replicas reach each other"
    apply(cluster, deployed, tmp_path)
    await available_replicas(cluster, deployed, 3)
    user, here = deployed.user, ("-n", deployed.namespace)
    for verb in ("create", "list", "update", "delete"):
        assert can_i(cluster, user, verb, "leases.coordination.k8s.io", *here), verb
    for verb in ("create", "list", "watch", "update"):
        assert can_i(cluster, user, verb, "configmaps", *here), verb
    assert not can_i(cluster, user, "update", "leases.coordination.k8s.io", "-n", "default")


async def test_namespaced_variant_grants_only_the_listed_namespaces(
    cluster: LocalCluster, kube: KubeClient, tmp_path: Path, deployments: list[Deployed]
) -> None:
    tag = secrets.token_hex(3)
    tenant, other = f"tenant-{tag}", f"other-{tag}"
    deployed = render(tmp_path, rbac="rbac-namespaced", tenants=[tenant])
    deployed.extra_namespaces = [tenant, other]
    deployments.append(deployed)
    await asyncio.gather(create_namespace(kube, tenant), create_namespace(kube, other))
    apply(cluster, deployed, tmp_path)
    user = deployed.user
    granted = [("list", "configmaps"), ("watch", "deployments.apps"), ("patch", "deployments.apps"),
               ("create", "secrets"), ("delete", "services"), ("escalate", "roles.rbac.authorization.k8s.io")]
    for verb, resource in granted:
        assert can_i(cluster, user, verb, resource, "-n", tenant), (verb, resource)
        assert not can_i(cluster, user, verb, resource, "-n", other), (verb, resource)
    assert not can_i(cluster, user, "list", "configmaps", "--all-namespaces")
    assert not can_i(cluster, user, "create", "namespaces")
    assert not can_i(cluster, user, "patch", "clusterroles.rbac.authorization.k8s.io")
    assert not can_i(cluster, user, "update", "deployments.apps", "-n", tenant)
    assert can_i(cluster, user, "update", "leases.coordination.k8s.io/gitops-agent-leader", "-n", deployed.namespace)
