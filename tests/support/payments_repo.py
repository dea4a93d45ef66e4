"""The payments repository our users keep for Argo CD, as files: 17 services with a kustomize base and
four overlays each, one Argo CD Application per service, their AppProject, and an ApplicationSet.

    payments_repo(repo_url=...)   {path: text}, ready for WorkTree.write or a directory

examples/argocd/ holds the same files (scripts/argocd-example writes them); a test keeps the two equal.

The AppProject is the design document's, named `payments-team` as in its RBAC policies; the
design's Applications say `project: payments-project` (the project's file name), which no project
is called, so these Applications say `payments-team`.
"""

from __future__ import annotations

from textwrap import dedent

DEFAULT_REPO_URL = "https://github.com/payments-engine/gitops.git"
PROJECT = "payments-team"
TENANT = "tenant-std-001"
TENANT_NAMESPACE = "payments-std-001"
OVERLAYS = ("dev", "staging", "production", TENANT)

SERVICES = (
    "payment-service", "validation-service", "account-adapter", "fraud-detection", "ledger-service",
    "clearing-adapter", "settlement-service", "reconciliation-service", "notification-service", "limits-service",
    "fx-rates-service", "routing-service", "sanctions-screening", "customer-profile", "audit-service",
    "reporting-service", "api-gateway",
)

# Per overlay: replicas, the ENVIRONMENT and DB_HOST literals, and whether it patches resources.
_ENVIRONMENTS = {
    "dev": (1, "dev", "dev-postgres", False),
    "staging": (2, "staging", "staging-postgres", True),
    "production": (3, "production", "prod-postgres-primary", True),
    TENANT: (2, "production", "std-001-postgres-primary", False),
}
_LIMITS = {"staging": ("100m", "128Mi", "250m", "256Mi"), "production": ("200m", "256Mi", "500m", "512Mi")}


def payments_repo(repo_url: str = DEFAULT_REPO_URL) -> dict[str, str]:
    """Every file of the repository, by path; Applications and the ApplicationSet point at `repo_url`."""
    files: dict[str, str] = {"README.md": _README}
    for service in SERVICES:
        files |= _base(service)
        for overlay in OVERLAYS:
            files |= _overlay(service, overlay)
        files[f"argocd/applications/{service}-app.yaml"] = _application(service, repo_url)
    files["argocd/projects/payments-project.yaml"] = _project(repo_url)
    files["argocd/applicationsets/all-services.yaml"] = _application_set(repo_url)
    return files


def _base(service: str) -> dict[str, str]:
    base = f"apps/{service}/base"
    return {
        f"{base}/kustomization.yaml": _BASE_KUSTOMIZATION,
        f"{base}/deployment.yaml": _deployment(service),
        f"{base}/service.yaml": _service(service),
        f"{base}/configmap.yaml": _configmap(service),
    }


_BASE_KUSTOMIZATION = dedent("""\
    apiVersion: kustomize.config.k8s.io/v1beta1
    kind: Kustomization
    resources:
      - deployment.yaml
      - service.yaml
      - configmap.yaml
    """)


def _deployment(service: str) -> str:
    return dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {service}
          labels:
            app: {service}
        spec:
          replicas: 2
          selector:
            matchLabels:
              app: {service}
          template:
            metadata:
              labels:
                app: {service}
            spec:
              containers:
                - name: {service}
                  image: registry.example.com/payments/{service}:1.0.0
                  ports:
                    - name: http
                      containerPort: 8080
                  envFrom:
                    - configMapRef:
                        name: {service}-config
                    - configMapRef:
                        name: {service}-env
                  resources:
                    requests:
                      cpu: 50m
                      memory: 64Mi
                    limits:
                      cpu: 200m
                      memory: 128Mi
        """)


def _service(service: str) -> str:
    return dedent(f"""\
        apiVersion: v1
        kind: Service
        metadata:
          name: {service}
          labels:
            app: {service}
        spec:
          selector:
            app: {service}
          ports:
            - name: http
              port: 80
              targetPort: http
        """)


def _configmap(service: str) -> str:
    return dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {service}-config
          labels:
            app: {service}
        data:
          SERVICE_NAME: {service}
          LOG_LEVEL: info
        """)


def _overlay(service: str, overlay: str) -> dict[str, str]:
    directory = f"apps/{service}/overlays/{overlay}"
    replicas, environment, db_host, patches_resources = _ENVIRONMENTS[overlay]
    patches = []
    files = {}
    if patches_resources:
        patches.append("resources-patch.yaml")
        files[f"{directory}/resources-patch.yaml"] = _resources_patch(service, overlay)
    if overlay == TENANT:
        patches.append("configmap-patch.yaml")
        files[f"{directory}/configmap-patch.yaml"] = _tenant_patch(service)
    patch_lines = "".join(f"  - path: {patch}\n" for patch in patches)
    files[f"{directory}/kustomization.yaml"] = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\n"
        "kind: Kustomization\n"
        "resources:\n"
        "  - ../../base\n"
        "replicas:\n"
        f"  - name: {service}\n"
        f"    count: {replicas}\n"
        "configMapGenerator:\n"
        f"  - name: {service}-env\n"
        "    literals:\n"
        f"      - ENVIRONMENT={environment}\n"
        f"      - DB_HOST={db_host}\n"
        + (f"patches:\n{patch_lines}" if patches else "")
    )
    return files


def _resources_patch(service: str, overlay: str) -> str:
    cpu, memory, cpu_limit, memory_limit = _LIMITS[overlay]
    return dedent(f"""\
        apiVersion: apps/v1
        kind: Deployment
        metadata:
          name: {service}
        spec:
          template:
            spec:
              containers:
                - name: {service}
                  resources:
                    requests:
                      cpu: {cpu}
                      memory: {memory}
                    limits:
                      cpu: {cpu_limit}
                      memory: {memory_limit}
        """)


def _tenant_patch(service: str) -> str:
    return dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata:
          name: {service}-config
        data:
          TENANT_ID: "STD-001"
          MAX_TPS: "10000"
          FRAUD_THRESHOLD: "5000"
          CLEARING_ENDPOINT: "https://std-clearing.co.za"
        """)


def _application(service: str, repo_url: str) -> str:
    return dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: Application
        metadata:
          name: {service}
          namespace: argocd
          finalizers:
            - resources-finalizer.argocd.argoproj.io
        spec:
          project: {PROJECT}
          source:
            repoURL: {repo_url}
            targetRevision: main
            path: apps/{service}/overlays/production
            kustomize:
              namePrefix: prod-
              commonLabels:
                environment: production
                team: payments
          destination:
            server: https://kubernetes.default.svc
            namespace: payments
          syncPolicy:
            automated:
              prune: true
              selfHeal: true
              allowEmpty: false
            syncOptions:
              - CreateNamespace=true
              - PruneLast=true
            retry:
              limit: 5
              backoff:
                duration: 5s
                factor: 2
                maxDuration: 3m
          ignoreDifferences:
            - group: apps
              kind: Deployment
              jsonPointers:
                - /spec/replicas
        """)


def _project(repo_url: str) -> str:
    return dedent(f"""\
        apiVersion: argoproj.io/v1alpha1
        kind: AppProject
        metadata:
          name: {PROJECT}
          namespace: argocd
        spec:
          description: Payments Team Services
          sourceRepos:
            - '{repo_url}'
          destinations:
            - namespace: payments
              server: https://kubernetes.default.svc
            - namespace: payments-*
              server: https://kubernetes.default.svc
          clusterResourceWhitelist:
            - group: ''
              kind: Namespace
          namespaceResourceWhitelist:
            - group: 'apps'
              kind: Deployment
            - group: ''
              kind: Service
            - group: ''
              kind: ConfigMap
          roles:
            - name: developer
              description: Developers can view and sync
              policies:
                - p, proj:{PROJECT}:developer, applications, get, *, allow
                - p, proj:{PROJECT}:developer, applications, sync, *, allow
            - name: admin
              description: Full access
              policies:
                - p, proj:{PROJECT}:admin, applications, *, *, allow
        """)


def _application_set(repo_url: str) -> str:
    return dedent(f"""\
        # One app per service for tenant STD-001, found by directory: a new service's
        # apps/<service>/overlays/{TENANT} deploys without editing this file.
        apiVersion: argoproj.io/v1alpha1
        kind: ApplicationSet
        metadata:
          name: all-services
          namespace: argocd
        spec:
          generators:
            - git:
                repoURL: {repo_url}
                revision: main
                directories:
                  - path: apps/*/overlays/{TENANT}
          template:
            metadata:
              name: '{{{{path[1]}}}}-std-001'
            spec:
              project: {PROJECT}
              source:
                repoURL: {repo_url}
                targetRevision: main
                path: '{{{{path}}}}'
                kustomize:
                  commonLabels:
                    tenant: std-001
                    team: payments
              destination:
                server: https://kubernetes.default.svc
                namespace: {TENANT_NAMESPACE}
              syncPolicy:
                automated:
                  prune: true
                  selfHeal: true
                syncOptions:
                  - CreateNamespace=true
        """)


_README = dedent("""\
    # payments-engine-gitops

    What runs where, for the 17 services of the payments engine.

    - `apps/<service>/base/`: the service (Deployment, Service, ConfigMap).
    - `apps/<service>/overlays/{dev,staging,production,tenant-std-001}/`: per environment.
    - `argocd/applications/`: one Argo CD Application per service (production).
    - `argocd/projects/`: the `payments-team` AppProject.
    - `argocd/applicationsets/all-services.yaml`: every service for tenant STD-001.

    gitops-agent runs `argocd/` as it is: one root app points at it (docs/argocd.md).
    """)
