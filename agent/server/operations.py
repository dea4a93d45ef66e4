"""Commands on one application: manual sync (or dry run), rollback, resume, and the diff a sync would apply."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent.controller import Controller, QueueFull, RevisionRefused, RollbackRefused
from agent.controller.controller import Elsewhere
from agent.controller.reconcile import ReconcileResult
from agent.engine.steps import selected
from agent.model import AppState, ObjectRef, OperationRequest
from agent.server.auth import declare, require, subject_of
from agent.server.views import bad_request, error_response, hook_view, json_fields, not_found, ref_view


def initiator(request: web.Request) -> str:
    """Who asked, for the sync history: the token's user ("" without [auth])."""
    subject = subject_of(request)
    return subject.name if subject else ""


async def _operation_request(request: web.Request) -> tuple[OperationRequest, bool]:
    """The sync asked for, and whether to answer at once (`"async": true`) rather than when it has ended."""
    body = await json_fields(request, ("revision", "prune", "dry_run", "resources", "async"))
    revision, prune, dry_run = body.get("revision"), body.get("prune"), body.get("dry_run", False)
    if not isinstance(body.get("async", False), bool):
        raise bad_request("async must be true or false")
    if revision is not None and not isinstance(revision, str):
        raise bad_request("revision must be a string")
    if prune is not None and not isinstance(prune, bool):
        raise bad_request("prune must be true or false")
    if not isinstance(dry_run, bool):
        raise bad_request("dry_run must be true or false")
    resources = _selection(body.get("resources", []))
    if resources and prune:
        raise bad_request("a sync of selected resources does not prune: leave out prune or resources")
    operation = OperationRequest(revision=revision or None, prune=prune, dry_run=dry_run, resources=resources,
                                 initiated_by=initiator(request))
    return operation, bool(body.get("async", False))


def _selection(value: Any) -> tuple[ObjectRef, ...]:
    """`resources: [{group, kind, namespace, name}]` (group and namespace may be left out; group and kind
    may be globs) as `argocd app sync --resource GROUP:KIND:NAME` takes them."""
    if not isinstance(value, list):
        raise bad_request("resources must be a list of {group, kind, namespace, name}")
    selection = []
    for index, item in enumerate(value):
        if not isinstance(item, dict) or set(item) - {"group", "kind", "namespace", "name"}:
            raise bad_request(f"resources[{index}] must be an object with group, kind, namespace and name")
        fields = {key: item.get(key, "") for key in ("group", "kind", "namespace", "name")}
        if not all(isinstance(text, str) for text in fields.values()) or not fields["kind"] or not fields["name"]:
            raise bad_request(f"resources[{index}]: kind and name are required strings")
        selection.append(ObjectRef(**fields))
    return tuple(selection)


def _unknown_resource(state: AppState | None, wanted: tuple[ObjectRef, ...]) -> ObjectRef | None:
    """A selected resource the app did not declare at its last comparison (None when all are known,
    or nothing is known yet: the sync itself then says)."""
    known = [resource.ref for resource in state.status.resources] if state is not None else []
    if not known:
        return None
    return next((want for want in wanted if not any(selected(ref, [want]) for ref in known)), None)


async def _rollback_revision(request: web.Request) -> str | None:
    """The optional `{"revision": SHA}` of a rollback."""
    revision = (await json_fields(request, ("revision",))).get("revision")
    if revision is not None and not isinstance(revision, str):
        raise bad_request("revision must be a string")
    return revision or None


def result_view(result: ReconcileResult) -> dict[str, Any]:
    """A sync or dry run, as the API reports it."""
    plan, sync = result.plan, result.sync
    return {
        "name": result.app,
        "revision": result.revision.sha if result.revision else None,
        "error": str(result.error) if result.error else f"cannot sync: {result.blocked}" if result.blocked else None,
        "sync_status": result.sync_status.value,
        "phase": sync.phase.value if sync else None,
        "message": sync.message if sync else (result.decision.reason if result.decision else ""),
        "changes": [{**ref_view(c.ref), "action": c.action.value, "message": c.message}
                    for c in (sync.changes.entries if sync else ())],
        "hooks": [hook_view(run) for run in (sync.hooks if sync else ())],
        "plan": [{**ref_view(o.ref), "action": o.action.value, "wave": o.wave, "blocked": o.blocked}
                 for o in plan.objects] if plan else [],
        "prune": [{**ref_view(c.ref), "blocked": c.blocked} for c in plan.prune] if plan else [],
        "diffs": {str(ref): diff for ref, diff in result.diffs.items()},
    }


class Operations:
    """Handlers bound to the controller they command."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    async def sync(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        operation, at_once = await _operation_request(request)
        spec = self.controller.spec(name)
        if spec is not None and operation.revision is not None and operation.revision != spec.revision:
            require(request, "override", name)  # Argo CD: syncing another revision than the tracked one
        unknown = _unknown_resource(self.controller.state(name), operation.resources)
        if unknown is not None:
            raise bad_request(f"{unknown} is not a resource of application {name} (as of its last comparison: "
                              "refresh it first if a commit just added it)")
        try:
            queued = await self.controller.queue_sync(name, operation)
        except QueueFull as exc:
            return _busy(exc)
        except RevisionRefused as exc:
            raise bad_request(str(exc)) from exc
        if queued is None:
            raise not_found(name)
        if at_once and not isinstance(queued, ReconcileResult):
            # Nobody waits for the answer; the app's status and history tell how it went.
            return web.json_response({"name": name, "sync": "queued"}, status=202)
        result = queued if isinstance(queued, ReconcileResult) else await queued
        return web.json_response(result_view(result), status=_answer_status(result))

    async def rollback(self, request: web.Request) -> web.Response:
        """Sync to a revision from the history (default: the previous good one) and pause auto-sync."""
        name = request.match_info["name"]
        revision = await _rollback_revision(request)
        try:
            result = await self.controller.rollback(name, revision, initiated_by=initiator(request))
        except QueueFull as exc:
            return _busy(exc)
        except Elsewhere as exc:
            return _elsewhere(exc)
        except RollbackRefused as exc:
            raise web.HTTPConflict(text=json.dumps({"error": str(exc)}), content_type="application/json") from exc
        if result is None:
            raise not_found(name)
        state = self.controller.state(name)
        body = result_view(result)
        body["auto_sync_paused"] = state is not None and state.pause is not None
        return web.json_response(body, status=_answer_status(result))

    async def resume(self, request: web.Request) -> web.Response:
        """Lift an auto-sync pause (after a rollback) and reconcile now."""
        name = request.match_info["name"]
        try:
            resumed = await self.controller.resume(name)
        except Elsewhere as exc:
            return _elsewhere(exc)
        if resumed is None:
            raise not_found(name)
        return web.json_response({"name": name, "resumed": resumed, "auto_sync_paused": False})

    async def diff(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        diffs = self.controller.diffs(name)
        if diffs is None:
            raise not_found(name)
        return web.json_response({"name": name, "diffs": {str(ref): diff for ref, diff in sorted(diffs.items())}})


def _answer_status(result: ReconcileResult) -> int:
    """403 for a sync a window refused (as Argo CD's API answers PermissionDenied), 409 for one that
    failed or could not run, 200 otherwise."""
    if result.blocked:
        return 403
    failed = result.error is not None or (result.sync is not None and result.sync.phase.value != "Succeeded")
    return 409 if failed else 200


def _busy(exc: QueueFull) -> web.Response:
    response = error_response(429, str(exc))
    response.headers["Retry-After"] = "5"
    return response


def _elsewhere(exc: Elsewhere) -> web.Response:
    response = error_response(503, str(exc))
    response.headers["Retry-After"] = "2"
    return response


def add_routes(app: web.Application, controller: Controller) -> None:
    operations = Operations(controller)
    app.router.add_post("/api/v1/applications/{name}/sync", operations.sync)
    app.router.add_get("/api/v1/applications/{name}/diff", operations.diff)
    app.router.add_post("/api/v1/applications/{name}/rollback", operations.rollback)
    app.router.add_post("/api/v1/applications/{name}/resume", operations.resume)
    for method, verb, action in (("POST", "sync", "sync"), ("GET", "diff", "get"), ("POST", "rollback", "rollback"),
                                 ("POST", "resume", "resume")):
        declare(app, method, f"/api/v1/applications/{{name}}/{verb}", action)
