"""aiohttp application: /healthz, /readyz, /metrics and /api/v1/applications, behind agent.server.auth."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import zlib
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from agent.config import AppSpec
from agent.controller import Controller
from agent.leader import Leadership, SingleInstance
from agent.metrics import CONTENT_TYPE_LATEST, Metrics
from agent.model import DEFAULT_PROJECT, AppState, AppStatus, AutoSyncPause, HistoryEntry, SyncOperation
from agent.server import auth as access
from agent.server import operations, projects, ui
from agent.server.auth import (
    AUTH,
    AUTHENTICATED,
    PROJECT_OF,
    PUBLIC,
    ROUTES,
    ApiAuth,
    declare,
    may,
    permissions,
)
from agent.server.auth import middleware as auth_middleware
from agent.server.guard import guard
from agent.server.probe import ClusterCheck, KubeCheck, SharedProbe
from agent.server.sharding import PEERS, SHARDS, ShardView, forward_to_owner, owner_fields, sharded_list
from agent.server.views import hook_view, not_found, ref_view
from agent.server.webhook import WebhookReceiver
from agent.server.webhook import add_routes as add_webhook_routes
from agent.shard.peers import Peers
from agent.source import redact_url

CONTROLLER = web.AppKey("controller", Controller)
METRICS = web.AppKey("metrics", Metrics)
KUBE_CHECK: web.AppKey[KubeCheck] = web.AppKey("kube_check")
CLUSTER_CHECK: web.AppKey[ClusterCheck] = web.AppKey("cluster_check")
LEADERSHIP: web.AppKey[Leadership] = web.AppKey("leadership")


@dataclass(frozen=True)
class Declared:
    """What an app's summary shows of its declaration: where it deploys, its project, its parent, and
    (with sharding) the replica that runs it."""

    namespace: str
    project: str = DEFAULT_PROJECT
    parent: str = ""  # the app whose render declared it (Argo CD definitions); "" for a TOML app
    owner: str = ""

    @classmethod
    def of(cls, spec: AppSpec | None, *, owner: str = "") -> Declared:
        return cls("", owner=owner) if spec is None else cls(spec.namespace, spec.project, spec.parent, owner)


class SummaryCache:
    """Each app's summary as JSON, kept until its status changes, and the whole list until any does.

    States are immutable and replaced when a reconcile ends, so between reconciles a
    poll of the list (a UI, a script, the CLI) costs nothing at all (the table's change
    count is the same), and while apps reconcile a join, not a dict and an encoding per app.
    """

    def __init__(self) -> None:
        self._encoded: dict[str, tuple[AppState, Declared, bytes]] = {}
        self._whole: tuple[int, bytes] | None = None  # (the table's change count, the list of every app)

    def everything(self, changes: int, apps: Callable[[], Iterable[tuple[AppState, Declared]]]) -> bytes:
        """The list of every app (no [auth] to filter it): built again only after a change."""
        if self._whole is None or self._whole[0] != changes:
            self._whole = (changes, self.body(apps()))
        return self._whole[1]

    def body(self, apps: Iterable[tuple[AppState, Declared]]) -> bytes:
        """A JSON array of the summaries of (state, declaration) pairs, in order."""
        return b"[" + b",".join(self.parts(apps)) + b"]"

    def parts(self, apps: Iterable[tuple[AppState, Declared]], *, complete: bool = True) -> list[bytes]:
        """The encoded summary of each pair; with `complete`, the apps not given are forgotten."""
        parts, seen = [], set()
        for state, declared in apps:
            seen.add(state.name)
            cached = self._encoded.get(state.name)
            if cached is None or cached[0] is not state or cached[1] != declared:
                encoded = json.dumps(summary_of(state, declared)).encode()
                cached = self._encoded[state.name] = (state, declared, encoded)
            parts.append(cached[2])
        if complete and len(seen) < len(self._encoded):  # apps removed, or not shown to this caller
            for gone in self._encoded.keys() - seen:
                del self._encoded[gone]
        return parts


SUMMARIES = web.AppKey("summaries", SummaryCache)


def summary_of(state: AppState, declared: Declared) -> dict[str, Any]:
    summary = app_summary(state, namespace=declared.namespace, project=declared.project, parent=declared.parent)
    if declared.owner:
        summary["owner"] = declared.owner
    return summary


def app_summary(state: AppState, *, namespace: str, project: str = DEFAULT_PROJECT, parent: str = "") -> dict[str, Any]:
    status = state.status
    revision = status.revision
    return {
        "name": status.name,
        "project": project,
        "parent": parent or None,
        "dest_namespace": namespace,
        "sync_status": status.sync_status.value,
        "health_status": status.health_status.value,
        "revision": revision.sha if revision else None,
        "revision_author": revision.author if revision else None,
        "revision_message": revision.message if revision else None,
        "revision_committed_at": revision.committed_at if revision else None,
        "operation_phase": status.operation_phase.value if status.operation_phase else None,
        "message": status.message,
        "conditions": [{"type": c.type.value, "message": c.message} for c in status.conditions],
        "changes": status.changes.counts(),
        "reconciled_at": status.reconciled_at,
        "last_synced_at": state.history[0].finished if state.history else None,
        "auto_sync_paused": _pause_view(state.pause),
    }


def _pause_view(pause: AutoSyncPause | None) -> dict[str, Any] | None:
    if pause is None:
        return None
    return {"reason": pause.reason, "since": pause.since, "tracked_revision": pause.tracked_sha or None}


def resource_views(status: AppStatus) -> list[dict[str, Any]]:
    """Every desired object with its sync and health, plus what the last sync did to it; then
    objects the last sync touched that are no longer desired (pruned or left for pruning)."""
    changes = {change.ref: change for change in status.changes.entries}
    rows: list[dict[str, Any]] = []
    for resource in status.resources:
        change = changes.pop(resource.ref, None)
        rows.append({
            **ref_view(resource.ref), "sync_status": resource.sync_status.value,
            "health_status": resource.health_status.value, "health_message": resource.health_message,
            "action": change.action.value if change else None, "message": change.message if change else "",
        })
    for ref, change in changes.items():
        rows.append({**ref_view(ref), "sync_status": None, "health_status": None, "health_message": "",
                     "action": change.action.value, "message": change.message})
    return rows


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER]
    checks: dict[str, Any] = {}
    try:
        checks["kube"] = {"ok": True, "version": await request.app[KUBE_CHECK]()}
    except Exception as exc:  # readiness reports any failure of the probe instead of raising
        checks["kube"] = {"ok": False, "error": str(exc)}
    pending = controller.not_yet_reconciled()  # a status restored from the snapshot does not count
    leadership = request.app.get(LEADERSHIP) or SingleInstance()
    # A follower reconciles nothing, yet serves the API and must stay ready (rolling updates wait for it).
    following = leadership.settled and not leadership.is_leader
    details = leadership.details()
    checks["shards" if details.get("sharding") else "leader"] = {"ok": leadership.settled, **details}
    checks["applications"] = {"ok": controller.all_reconciled or following, "not_yet_reconciled": pending}
    cluster_check = request.app.get(CLUSTER_CHECK)
    if cluster_check is not None:
        # Reported, never failing: one cluster that is down makes its own apps Unknown, not the agent
        # unready (the home cluster is the `kube` check's).
        checks["clusters"] = {"ok": True, "clusters": await cluster_check()}
    ready = all(check["ok"] for check in checks.values())
    return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)


GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib writes a gzip header and trailer


async def metrics(request: web.Request) -> web.Response:
    """The scrape, sent piece by piece as it is made (chunked): at ten thousand apps it is 35 MB of text,
    never held whole, and the event loop runs between pieces."""
    headers = {"Content-Type": CONTENT_TYPE_LATEST}
    # Level 1 when Prometheus asks for gzip: a thousand apps' 3.5 MB become 110 kB; the default level
    # takes three times as long.
    compressor = zlib.compressobj(1, zlib.DEFLATED, GZIP_WBITS) \
        if "gzip" in request.headers.get("Accept-Encoding", "") else None
    if compressor is not None:
        headers["Content-Encoding"] = "gzip"

    async def body() -> AsyncIterator[bytes]:
        for piece in request.app[METRICS].pieces():
            data = compressor.compress(piece) if compressor is not None else piece
            if data:
                yield data
            await asyncio.sleep(0)  # a compressed piece may be empty: let others run all the same
        if compressor is not None:
            yield compressor.flush()

    return web.Response(body=body(), headers=headers)


async def list_applications(request: web.Request) -> web.Response:
    table = request.app[CONTROLLER].apps
    summaries = request.app[SUMMARIES]
    shards = request.app.get(SHARDS)
    if shards is not None:
        return await _sharded_list(request, shards)
    if request.app.get(AUTH) is None:  # everyone sees every app: one list for all callers
        body = summaries.everything(table.changes, lambda: ((state, Declared.of(spec))
                                                             for state, spec in table.summaries()))
    else:
        body = summaries.body((state, Declared.of(spec)) for state, spec in table.summaries()
                              if may(request, "get", state.name))
    return web.Response(body=body, content_type="application/json")


async def _sharded_list(request: web.Request, shards: ShardView) -> web.Response:
    """Every replica's apps (agent.server.sharding): this one's own, each peer's, and the shared
    state's view of those whose replica does not answer."""
    controller = request.app[CONTROLLER]
    me = shards.identity

    def local(own_only: bool) -> list[tuple[str, bytes]]:
        pairs = [(state, spec) for state, spec in controller.apps.summaries()
                 if (not own_only or shards.runs(state.name)) and may(request, "get", state.name)]
        apps = ((state, Declared.of(spec, owner=me if shards.runs(state.name) else "")) for state, spec in pairs)
        return list(zip((state.name for state, _ in pairs), request.app[SUMMARIES].parts(apps, complete=not own_only),
                        strict=True))

    def fallback(name: str, extra: dict[str, Any]) -> bytes:
        state = controller.state(name) or AppState.new(name)
        return json.dumps({**summary_of(state, Declared.of(controller.spec(name))), **extra}).encode()

    return await sharded_list(request, local, fallback)


async def get_application(request: web.Request) -> web.Response:
    controller = request.app[CONTROLLER]
    name = request.match_info["name"]
    state, spec = controller.state(name), controller.spec(name)
    if state is None or spec is None:
        raise not_found(name)
    body = app_summary(state, namespace=spec.namespace, project=spec.project, parent=spec.parent)
    body["origin"] = spec.origin
    body["source"] = {"repo": redact_url(spec.repo), "revision": spec.revision, "path": spec.path}
    body["destination"] = {"cluster": spec.cluster, "server": controller.dest_server(spec), "namespace": spec.namespace}
    body["resources"] = resource_views(state.status)
    body["operation"] = operation_view(state.operation)
    body["history"] = [history_view(entry) for entry in state.history]
    body["permissions"] = permissions(request, name)
    body.update(owner_fields(request, name))
    return web.json_response(body)


async def session(request: web.Request) -> web.Response:
    """Whether the API needs a token and who the presented one belongs to. Public, and 200 also for a
    missing or unknown token (`authenticated: false`): the web UI asks it first, to show its log-in
    form instead of failing a request."""
    auth = request.app.get(AUTH)
    if auth is None:
        return web.json_response({"auth": False, "authenticated": True, "user": "", "groups": []})
    subject = auth.authenticate(request.headers.get("Authorization"))
    if subject is None:
        return web.json_response({"auth": True, "authenticated": False, "user": "", "groups": []})
    return web.json_response({"auth": True, "authenticated": True, "user": subject.user,
                              "groups": list(subject.groups)})


def operation_view(operation: SyncOperation | None) -> dict[str, Any] | None:
    """The sync in progress: what it waits for, and each hook's progress."""
    if operation is None:
        return None
    return {"phase": "Running", "revision": operation.revision.sha, "trigger": operation.trigger.value,
            "started": operation.started, "message": operation.message, "failure": operation.failure or None,
            "hooks": [hook_view(run) for run in operation.hooks],
            "resources": [ref_view(ref) for ref in operation.resources]}


def history_view(entry: HistoryEntry) -> dict[str, Any]:
    return {**asdict(entry), "hooks": [hook_view(run) for run in entry.hooks]}


async def refresh_application(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if not request.app[CONTROLLER].request_refresh(name):
        raise not_found(name)
    return web.json_response({"refresh": "queued", "name": name}, status=202)


def build_app(*, controller: Controller, metrics_: Metrics, kube_check: KubeCheck,
              webhook: WebhookReceiver | None = None, leadership: Leadership | None = None,
              auth: ApiAuth | None = None, cluster_check: ClusterCheck | None = None,
              shards: ShardView | None = None, peers: Peers | None = None) -> web.Application:
    """The HTTP application; with `auth`, every route but the probes, /metrics and the webhook needs a token.
    A caller's identity is settled first (401, 403), then forged browser requests and malformed bodies
    are refused (agent.server.guard)."""
    middlewares = [ui.security_headers, auth_middleware, guard]
    if shards is not None and peers is not None:
        middlewares.append(forward_to_owner)  # after the caller is known and the request is not refused
    app = web.Application(client_max_size=1024 * 1024, middlewares=middlewares)
    if shards is not None and peers is not None:
        app[SHARDS], app[PEERS] = shards, peers
    app[CONTROLLER] = controller
    app[METRICS] = metrics_
    probe: KubeCheck = SharedProbe(kube_check)
    app[KUBE_CHECK] = probe
    if cluster_check is not None:
        shared: ClusterCheck = SharedProbe(cluster_check)
        app[CLUSTER_CHECK] = shared
    app[LEADERSHIP] = leadership or SingleInstance()
    app[SUMMARIES] = SummaryCache()
    app[ROUTES] = {}
    app[PROJECT_OF] = lambda name: spec.project if (spec := controller.spec(name)) else None
    if auth is not None:
        app[AUTH] = auth
    routes = [("GET", "/healthz", healthz, PUBLIC), ("GET", "/readyz", readyz, PUBLIC),
              ("GET", "/metrics", metrics, access.METRICS),
              ("GET", "/api/v1/applications", list_applications, AUTHENTICATED),
              ("GET", "/api/v1/session", session, PUBLIC),
              ("GET", "/api/v1/applications/{name}", get_application, "get"),
              ("POST", "/api/v1/applications/{name}/refresh", refresh_application, "refresh")]
    for method, path, handler, action in routes:
        if method == "GET":
            app.router.add_get(path, handler)  # HEAD too, under the same declaration
        else:
            app.router.add_route(method, path, handler)
        declare(app, method, path, action)
    operations.add_routes(app, controller)
    projects.add_routes(app, controller)
    for method, path in ui.add_routes(app):
        declare(app, method, path, PUBLIC)  # the page and its assets; the data they show needs a token
    if webhook is not None:
        add_webhook_routes(app, webhook)
        declare(app, "POST", "/api/webhook", PUBLIC)  # its own HMAC scheme, per repository
    return app


@contextlib.asynccontextmanager
async def serve(app: web.Application, host: str, port: int,
                ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[web.AppRunner]:
    """Run the app inside our own loop; signals stay ours (handle_signals=False). HTTPS with `ssl_context`."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
        await site.start()
        yield runner
    finally:
        await runner.cleanup()
