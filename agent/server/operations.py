"""Commands on one application: manual sync (or dry run), rollback, resume, and the diff a sync would apply."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent.controller import Controller, RollbackRefused
from agent.controller.reconcile import OperationRequest, ReconcileResult
from agent.model import ObjectRef


def _not_found(name: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": f"application {name} not found"}),
                            content_type="application/json")


def _bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def _operation_request(request: web.Request) -> OperationRequest:
    if not request.can_read_body:
        return OperationRequest()
    try:
        body = await request.json()
    except ValueError as exc:
        raise _bad_request(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object")
    unknown = sorted(set(body) - {"revision", "prune", "dry_run"})
    if unknown:
        raise _bad_request(f"unknown field {unknown[0]!r} (known: revision, prune, dry_run)")
    revision, prune, dry_run = body.get("revision"), body.get("prune"), body.get("dry_run", False)
    if revision is not None and not isinstance(revision, str):
        raise _bad_request("revision must be a string")
    if prune is not None and not isinstance(prune, bool):
        raise _bad_request("prune must be true or false")
    if not isinstance(dry_run, bool):
        raise _bad_request("dry_run must be true or false")
    return OperationRequest(revision=revision or None, prune=prune, dry_run=dry_run)


async def _rollback_revision(request: web.Request) -> str | None:
    """The optional `{"revision": SHA}` of a rollback."""
    if not request.can_read_body:
        return None
    try:
        body = await request.json()
    except ValueError as exc:
        raise _bad_request(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _bad_request("body must be a JSON object")
    unknown = sorted(set(body) - {"revision"})
    if unknown:
        raise _bad_request(f"unknown field {unknown[0]!r} (known: revision)")
    revision = body.get("revision")
    if revision is not None and not isinstance(revision, str):
        raise _bad_request("revision must be a string")
    return revision or None


def _ref_view(ref: ObjectRef) -> dict[str, str]:
    return {"group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name}


def result_view(result: ReconcileResult) -> dict[str, Any]:
    """A sync or dry run, as the API reports it."""
    plan, sync = result.plan, result.sync
    return {
        "name": result.app,
        "revision": result.revision.sha if result.revision else None,
        "error": str(result.error) if result.error else None,
        "sync_status": result.sync_status.value,
        "phase": sync.phase.value if sync else None,
        "message": sync.message if sync else (result.decision.reason if result.decision else ""),
        "changes": [{**_ref_view(c.ref), "action": c.action.value, "message": c.message}
                    for c in (sync.changes.entries if sync else ())],
        "plan": [{**_ref_view(o.ref), "action": o.action.value, "wave": o.wave} for o in plan.objects]
        if plan else [],
        "prune": [{**_ref_view(c.ref), "blocked": c.blocked} for c in plan.prune] if plan else [],
        "diffs": {str(ref): diff for ref, diff in result.diffs.items()},
    }


class Operations:
    """Handlers bound to the controller they command."""

    def __init__(self, controller: Controller) -> None:
        self.controller = controller

    async def sync(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        operation = await _operation_request(request)
        result = await self.controller.sync_now(name, operation)
        if result is None:
            raise _not_found(name)
        failed = result.error is not None or (result.sync is not None and result.sync.phase.value != "Succeeded")
        return web.json_response(result_view(result), status=409 if failed else 200)

    async def rollback(self, request: web.Request) -> web.Response:
        """Sync to a revision from the history (default: the previous good one) and pause auto-sync."""
        name = request.match_info["name"]
        revision = await _rollback_revision(request)
        try:
            result = await self.controller.rollback(name, revision)
        except RollbackRefused as exc:
            raise web.HTTPConflict(text=json.dumps({"error": str(exc)}), content_type="application/json") from exc
        if result is None:
            raise _not_found(name)
        status = self.controller.status(name)
        body = result_view(result)
        body["auto_sync_paused"] = status is not None and status.paused is not None
        failed = result.error is not None or (result.sync is not None and result.sync.phase.value != "Succeeded")
        return web.json_response(body, status=409 if failed else 200)

    async def resume(self, request: web.Request) -> web.Response:
        """Lift an auto-sync pause (after a rollback) and reconcile now."""
        name = request.match_info["name"]
        resumed = await self.controller.resume(name)
        if resumed is None:
            raise _not_found(name)
        return web.json_response({"name": name, "resumed": resumed, "auto_sync_paused": False})

    async def diff(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        diffs = self.controller.diffs(name)
        if diffs is None:
            raise _not_found(name)
        return web.json_response({"name": name, "diffs": {str(ref): diff for ref, diff in sorted(diffs.items())}})


def add_routes(app: web.Application, controller: Controller) -> None:
    operations = Operations(controller)
    app.router.add_post("/api/v1/applications/{name}/sync", operations.sync)
    app.router.add_get("/api/v1/applications/{name}/diff", operations.diff)
    app.router.add_post("/api/v1/applications/{name}/rollback", operations.rollback)
    app.router.add_post("/api/v1/applications/{name}/resume", operations.resume)
