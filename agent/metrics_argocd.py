"""Argo CD's application metrics, with Argo CD's names, labels, help texts and buckets.

Dashboards and alert rules written against Argo CD read these unchanged. The labels mean
what they mean there:

    namespace    Argo CD: the Application's namespace, i.e. where Argo CD runs. Here: the
                 namespace the agent runs in ($POD_NAMESPACE, else its service account's);
                 "" outside a cluster, and Prometheus then sets its target's namespace.
    name         the app's name
    project      the app's project (`default` unless it names one)
    dest_server  `https://kubernetes.default.svc`, Argo CD's name for the cluster it runs
                 in: the agent deploys to the one cluster its client talks to
    repo         argocd_app_info: the repository URL without a password, normalized as
                 Argo CD does (lowercase, no `.git`); argocd_git_*: the URL without a password

Per-app series are written as text at scrape time, from plain values kept per app (as
agent.metrics does for its own family): at a thousand apps they are most of a scrape, and
each app's constant label text is built once, when its spec or status changes, instead of
once per series per scrape.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from sys import intern

from prometheus_client import CollectorRegistry, Counter, Histogram

from agent.kube import KubeRequest
from agent.metrics_text import batched, header, quote
from agent.model import AppStatus, OperationPhase
from agent.source.urls import redact_url, scp_like

DEST_SERVER = "https://kubernetes.default.svc"
RECONCILE_BUCKETS = (0.25, 0.5, 1, 2, 4, 8, 16)  # Argo CD's, "after observing a ~2100ms mean reconcile time"
GIT_REQUEST_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 4, 10, 20)

_VERBS = {"post": "Create", "put": "Update", "patch": "Patch", "delete": "Delete", "watch": "Watch"}

# (dry_run, verb, resource_kind, resource_namespace, response_code)
_RequestKey = tuple[bool, str, str, str, int]


@dataclass(frozen=True)
class AppLabels:
    """What an app's spec puts into its series' labels."""

    project: str
    repo: str  # see argocd_repo_url
    dest_namespace: str
    autosync: bool
    dest_server: str = ""  # the app's cluster; Argo CD's name for the one the agent runs against by default


def argocd_repo_url(url: str) -> str:
    """The repository as argocd_app_info's `repo` shows it: every user name and password removed (a
    token may be either), then Argo CD's normalization (lowercase; `.git` and `ssh://` dropped;
    `host:org/repo` as `host/org/repo`)."""
    text = redact_url(url.strip()).lower()
    scp = scp_like(text)
    if scp is not None:
        user, host, path = scp
        text = f"{user}@{host}/{path}" if user else f"{host}/{path}"
    return text.removeprefix("ssh://").removesuffix(".git")


def k8s_request_labels(verb: str, path: str) -> tuple[str, str, str]:
    """(verb, resource_kind, resource_namespace) of one API request as Argo CD names them, read from
    the path as Argo CD reads its requests' URLs: `List` and `Get` told apart by whether the path
    names one object, the resource as its plural (`deployments`)."""
    parts = path.strip("/").split("/")
    rest = parts[2:] if parts[0] == "api" else parts[3:] if parts[0] == "apis" else []
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    # Interned: every app keeps these in its counters' keys, and they are the same few words.
    resource, namespace = intern(rest[0] if rest else ""), intern(namespace)
    if verb == "get":
        return ("List" if len(rest) == 1 else "Get"), resource, namespace
    return _VERBS.get(verb, "Unknown"), resource, namespace


class _App:
    """One app's values and the label text that stays the same between its status changes."""

    __slots__ = ("conditions", "info", "labels", "prefix", "requests", "seen", "sync_seconds", "syncs")

    @property
    def dest_server(self) -> str:
        return (self.labels.dest_server if self.labels else "") or DEST_SERVER

    def __init__(self) -> None:
        self.labels: AppLabels | None = None  # None until its first status: not written yet
        self.seen: tuple[object, ...] = ()  # what `info` and `conditions` were built from
        self.prefix = ""  # namespace="…",name="…",project="…"
        self.info = ""  # argocd_app_info's labels
        self.conditions: dict[str, int] = {}
        self.syncs: Tally[tuple[str, bool]] = Tally()  # (phase, dry_run)
        self.sync_seconds = 0.0
        self.requests: Tally[_RequestKey] = Tally()


class ArgoCDSeries:
    """The family's agent-wide metrics live in `registry`; the per-app ones are `exposition()`'s text."""

    def __init__(self, *, namespace: str, registry: CollectorRegistry) -> None:
        self._namespace = namespace
        self._apps: dict[str, _App] = {}
        self._unowned: Tally[_RequestKey] = Tally()  # requests outside any app's reconcile (watches, leases)
        self._unowned_prefix = f'namespace="",name="",project="",server={quote(DEST_SERVER)}'
        reconcile = Histogram("argocd_app_reconcile", "Application reconciliation performance in seconds.",
                              ["namespace", "dest_server"], registry=registry, buckets=RECONCILE_BUCKETS)
        self._reconcile = reconcile.labels(namespace, DEST_SERVER)
        self._git_requests = Counter("argocd_git_request_total", "Number of git requests performed by repo server",
                                     ["repo", "request_type"], registry=registry)
        self._git_duration = Histogram("argocd_git_request_duration_seconds", "Git requests duration seconds.",
                                       ["repo", "request_type"], registry=registry, buckets=GIT_REQUEST_BUCKETS)

    def _app(self, name: str) -> _App:
        app = self._apps.get(name)
        if app is None:
            app = self._apps[name] = _App()
        return app

    def observe_status(self, status: AppStatus, labels: AppLabels) -> None:
        app = self._app(status.name)
        operation = "sync" if status.operation_phase is OperationPhase.RUNNING else ""
        seen = (labels, status.sync_status, status.health_status, operation, status.conditions)
        if seen == app.seen:  # an unchanged poll: nothing to build
            return
        if labels != app.labels:
            app.labels = labels
            app.prefix = (f"namespace={quote(self._namespace)},name={quote(status.name)},"
                          f"project={quote(labels.project)}")
        app.seen = seen
        app.info = (f"{app.prefix},autosync_enabled={quote(str(labels.autosync).lower())},repo={quote(labels.repo)},"
                    f"dest_server={quote(labels.dest_server or DEST_SERVER)},"
                    f"dest_namespace={quote(labels.dest_namespace)},"
                    f"sync_status={quote(status.sync_status.value)},"
                    f"health_status={quote(status.health_status.value)},operation={quote(operation)}")
        app.conditions = dict(Tally(condition.type.value for condition in status.conditions))

    def observe_reconcile(self, seconds: float) -> None:
        self._reconcile.observe(seconds)

    def observe_sync(self, name: str, phase: OperationPhase, seconds: float, *, dry_run: bool) -> None:
        app = self._app(name)
        app.syncs[(phase.value, dry_run)] += 1
        if not dry_run:
            app.sync_seconds += seconds

    def observe_kube_request(self, owner: tuple[str, bool] | None, request: KubeRequest) -> None:
        """`owner`: the app whose reconcile sent it, and whether that is a dry run; None for none."""
        verb, resource, namespace = k8s_request_labels(request.verb, request.path)
        if owner is None:
            self._unowned[(False, verb, resource, namespace, request.code)] += 1
        else:
            self._app(owner[0]).requests[(owner[1], verb, resource, namespace, request.code)] += 1

    def observe_git_request(self, repo: str, request_type: str, seconds: float) -> None:
        self._git_requests.labels(repo, request_type).inc()
        self._git_duration.labels(repo, request_type).observe(seconds)

    def forget(self, name: str) -> None:
        self._apps.pop(name, None)

    def pieces(self) -> Iterator[str]:
        """The per-app families in the text format, `BATCH` apps at a time. The caller awaits between
        pieces and reconciles change the values meanwhile: the apps are a copy taken before the first
        piece, and each app's values are read whole within one piece."""
        apps = [app for app in self._apps.values() if app.labels is not None]
        yield header("argocd_app_info", "gauge", "Information about application.")
        for batch in batched(apps):
            yield "".join(f"argocd_app_info{{{app.info}}} 1\n" for app in batch)
        yield header("argocd_app_condition", "gauge", "Report application conditions.")
        for batch in batched(apps):
            yield "".join(f"argocd_app_condition{{{app.prefix},condition={quote(condition)}}} {count}\n"
                          for app in batch for condition, count in app.conditions.items())
        yield header("argocd_app_sync_total", "counter", "Number of application syncs.")
        for batch in batched(apps):
            yield "".join(f"argocd_app_sync_total{{{app.prefix},dest_server={quote(app.dest_server)},"
                          f"phase={quote(phase)},dry_run={quote(str(dry_run).lower())}}} {count}\n"
                          for app in batch for (phase, dry_run), count in app.syncs.items())
        yield header("argocd_app_sync_duration_seconds_total", "counter",
                     "Application sync performance in seconds total.")
        for batch in batched(apps):
            yield "".join(f"argocd_app_sync_duration_seconds_total{{{app.prefix},"
                          f"dest_server={quote(app.dest_server)}}} {app.sync_seconds!r}\n"
                          for app in batch if app.syncs)
        yield header("argocd_app_k8s_request_total", "counter",
                     "Number of kubernetes requests executed during application reconciliation.")
        yield _requests(self._unowned_prefix, self._unowned)
        for batch in batched(apps):
            yield "".join(_requests(f"{app.prefix},server={quote(app.dest_server)}", app.requests) for app in batch)


def _requests(prefix: str, requests: Mapping[_RequestKey, int]) -> str:
    return "".join(f"argocd_app_k8s_request_total{{{prefix},response_code={quote(str(code))},verb={quote(verb)},"
                   f"resource_kind={quote(kind)},resource_namespace={quote(namespace)},"
                   f"dry_run={quote(str(dry_run).lower())}}} {count}\n"
                   for (dry_run, verb, kind, namespace, code), count in requests.items())
