"""Pieces every handler shares: object identities as JSON, JSON error responses, JSON bodies."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from agent.model import HookRun, ObjectRef

MAX_JSON_DEPTH = 64  # far deeper than any request or webhook payload; Python's decoder recurses per level
_JSON_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_JSON_BRACKET = re.compile(r"[\[\]{}]")


def loads_bounded(text: str | bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads, refusing (ValueError) a document nested deeper than `max_depth` before decoding it.

    200,000 nested brackets fit in a small body and make the decoder raise RecursionError,
    which is no ValueError and would escape as a 500; it is measured first, without recursion.
    """
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    depth = deepest = 0
    for bracket in _JSON_BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
        if deepest > max_depth:
            raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(text)
    except RecursionError:  # the measure above makes this unreachable; never let it out as a 500
        raise ValueError(f"JSON nested deeper than {max_depth} levels") from None


def ref_view(ref: ObjectRef) -> dict[str, str]:
    return {"group": ref.group, "kind": ref.kind, "namespace": ref.namespace, "name": ref.name}


def hook_view(run: HookRun) -> dict[str, Any]:
    """One hook of a sync: its phase, the object created for it, and how it went."""
    return {"phase": run.phase.value, **ref_view(run.ref), "wave": run.wave, "status": run.status.value,
            "message": run.message, "deleted": run.deleted}


def not_found(name: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=json.dumps({"error": f"application {name} not found"}),
                            content_type="application/json")


def error_response(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def bad_request(message: str) -> web.HTTPBadRequest:
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def json_fields(request: web.Request, known: tuple[str, ...]) -> dict[str, Any]:
    """The request's JSON object (empty without a body); anything else, or an unknown field, is a 400."""
    if not request.can_read_body:
        return {}
    try:
        body = loads_bounded(await request.read())
    except ValueError as exc:  # UnicodeDecodeError too
        raise bad_request(f"body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("body must be a JSON object")
    unknown = sorted(set(body) - set(known))
    if unknown:
        raise bad_request(f"unknown field {unknown[0]!r} (known: {', '.join(known)})")
    return body
