"""What the HTTP server refuses before any handler runs: requests a browser page could forge.

A page on any site can make its visitor's browser send a "simple" cross-origin POST (a
form, or `fetch` with `text/plain`) to the agent, also to one that listens on loopback
only; the browser sends it without asking and only hides the answer. So:

- every POST of the API must say `Content-Type: application/json`, which a browser sends
  cross-origin only after a CORS preflight that the agent never approves;
- a request whose `Sec-Fetch-Site` is neither `same-origin` nor `none`, or whose `Origin`
  names another host, is refused whatever its method.

The webhook (`POST /api/webhook`) is exempt: git hosts send their own content types, and
it proves itself with a signature or token instead. So is a GET of the web UI's page and
assets (agent.server.ui): a link in a chat message or a notification is a cross-site
navigation, and those files hold no data (the page's own API calls are same-origin).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from aiohttp import web

from agent.server.ui import is_ui_path
from agent.server.views import error_response

WEBHOOK_PATH = "/api/webhook"
JSON_TYPE = "application/json"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def refusal(method: str, path: str, headers: Mapping[str, str]) -> tuple[int, str] | None:
    """(HTTP status, reason) when the request is to be refused; None when it may proceed."""
    if path == WEBHOOK_PATH or (method in ("GET", "HEAD") and is_ui_path(path)):
        return None
    site = headers.get("Sec-Fetch-Site", "").strip().lower()
    if site and site not in ("same-origin", "none"):
        return 403, f"cross-origin requests are refused (Sec-Fetch-Site: {site})"
    origin = headers.get("Origin", "").strip()
    if origin and not same_host(origin, headers):
        return 403, f"cross-origin requests are refused (Origin: {origin[:200]})"
    if method == "POST":
        media_type = headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if media_type != JSON_TYPE:
            shown = f"Content-Type {media_type!r}" if media_type else "no Content-Type"
            return 415, f"POST requests must have Content-Type: {JSON_TYPE} (this one has {shown})"
    return None


def same_host(origin: str, headers: Mapping[str, str]) -> bool:
    """Whether an Origin header names the host the request was sent to (through a proxy: the
    host it forwarded). Schemes are not compared: a TLS-terminating proxy changes them."""
    if origin == "null":
        return False
    try:
        parts = urlsplit(origin)
        origin_port = parts.port
    except ValueError:
        return False
    host = (headers.get("X-Forwarded-Host") or headers.get("Host") or "").split(",", 1)[0].strip()
    try:
        target = urlsplit(f"//{host}")
        target_port = target.port
    except ValueError:
        return False
    if not parts.hostname or parts.hostname.lower() != (target.hostname or "").lower():
        return False
    origin_port = origin_port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    # A Host without a port is the scheme's default port, whichever scheme the browser used.
    return (target_port is None and origin_port in (80, 443)) or origin_port == target_port


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    refused = refusal(request.method, request.path, request.headers)
    if refused is not None:
        status, reason = refused
        return error_response(status, reason)
    return await handler(request)
