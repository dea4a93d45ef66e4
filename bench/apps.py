"""The repository a benchmark syncs: N apps of four objects each.

App `NNNN` is the directory `apps/app-NNNN/` holding a ServiceAccount, a ConfigMap, a Service
and a Deployment at 0 replicas, all named `app-NNNN`, one file each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

Obj = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def path(self, namespace: str, name: str = "") -> str:
        root = f"/apis/{self.api_version}" if self.group else f"/api/{self.api_version}"
        return f"{root}/namespaces/{namespace}/{self.plural}" + (f"/{name}" if name else "")


SERVICE_ACCOUNT = Kind("v1", "ServiceAccount", "serviceaccounts")
CONFIG_MAP = Kind("v1", "ConfigMap", "configmaps")
SERVICE = Kind("v1", "Service", "services")
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
KINDS = (SERVICE_ACCOUNT, CONFIG_MAP, SERVICE, DEPLOYMENT)  # the agent's apply order
KIND_OF = {k.kind: k for k in KINDS}


MAX_APPS = 10_000  # what every benchmark's --apps may ask for (the local cluster is sized for it)


def app_dir(index: int) -> str:
    return f"app-{index:04d}"


def app_objects(index: int, value: str = "v1") -> list[Obj]:
    """The four objects of app `index`, without a namespace (as in Git); `value` is the ConfigMap's data.value."""
    name = app_dir(index)
    selector = {"app.kubernetes.io/name": name}
    meta = {"name": name, "labels": {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "bench"}}
    container = {"name": "main", "image": "registry.example.com/bench:v1", "ports": [{"containerPort": 8080}]}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": dict(meta)},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": dict(meta), "data": {"app": name, "value": value}},
        {"apiVersion": "v1", "kind": "Service", "metadata": dict(meta),
         "spec": {"selector": selector, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": dict(meta),
         "spec": {"replicas": 0, "selector": {"matchLabels": selector},
                  "template": {"metadata": {"labels": selector},
                               "spec": {"serviceAccountName": name, "containers": [container]}}}},
    ]


def app_files(index: int, value: str = "v1") -> dict[str, str]:
    """`apps/app-NNNN/<kind>.yaml` → YAML, one file per object."""
    return {f"apps/{app_dir(index)}/{obj['kind'].lower()}.yaml": yaml.safe_dump(obj, sort_keys=False)
            for obj in app_objects(index, value)}
