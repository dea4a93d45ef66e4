"""Pieces every handler shares: object identities as JSON, JSON error responses, JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from agent.model import HookRun, ObjectRef


def ref_view(ref: ObjectRef) -> dict[str, str]:
    return {"group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name}


def hook_view(run: HookRun) -> dict[str, Any]:
    """One hook of a sync: its phase, the object created for it, and how it went."""
    return {"phase": run.phase.value, **ref_view(run.ref), "wave": run.wave, "status": run.status.value,
            "message": run.message, "deleted": run.deleted}


def not_found(name: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": f"application {name} not found"}),
                            content_type="application/json")


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def json_fields(request: web.Request, known: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object (empty without a body); anything else, or an unknown field, is a 400."""
    if not request.can_read_body:
        return {}
    try:
        body = await request.json()
    except ValueError as exc:
        raise bad_request(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r} (known: {', '.join(known)})")
    return body
