"""The web UI: three static files shipped in the package, served at `/` with strict security headers.

`/` and `/applications/{name}` (the address Argo CD's notification templates link to) both
answer the same page; the page's script reads the path and shows the list or one app. The
files are read once when the server is built and answered from memory with an ETag, so a
reload costs a 304. They need no token: everything they show comes from the API, which does.

The page runs no inline script or style and loads nothing from elsewhere, so the policy is
`default-src 'self'` without exceptions; it may not be framed (clickjacking a sync button).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from aiohttp import web

UI_PACKAGE, UI_DIRECTORY = "agent.server", "static"  # package data (pyproject.toml)
ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "icon.svg": "image/svg+xml"}
PAGE = "index.html"
PAGE_PATHS = ("/", "/applications/{name}")
ASSET_PREFIX = "/ui/"
CONTENT_SECURITY_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # for browsers that predate frame-ancestors
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class StaticFile:
    body: bytes
    content_type: str
    etag: str


def load_files() -> dict[str, StaticFile]:
    """The page and its assets from the package; a missing one is a broken install (FileNotFoundError)."""
    files = {PAGE: "text/html", **ASSETS}
    loaded = {}
    for name, content_type in files.items():
        body = resources.files(UI_PACKAGE).joinpath(UI_DIRECTORY, name).read_bytes()
        loaded[name] = StaticFile(body, content_type, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    return loaded


def is_ui_path(path: str) -> bool:
    """Whether a path is one of the UI's pages or assets (public, and open to cross-site navigation)."""
    return path == "/" or path.startswith(ASSET_PREFIX) or (
        path.startswith("/applications/") and path.count("/") == 2)


class StaticUi:
    def __init__(self, files: dict[str, StaticFile]) -> None:
        self.files = files

    def _answer(self, request: web.Request, name: str) -> web.Response:
        static = self.files[name]
        headers = {**SECURITY_HEADERS, "ETag": static.etag, "Cache-Control": "no-cache"}
        if static.etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        charset = "utf-8" if static.content_type.startswith("text/") else None
        return web.Response(body=static.body, content_type=static.content_type, charset=charset, headers=headers)

    async def page(self, request: web.Request) -> web.Response:
        return self._answer(request, PAGE)

    async def asset(self, request: web.Request) -> web.Response:
        name = request.match_info["file"]
        if name not in ASSETS:
            raise web.HTTPNotFound(text=f"no UI file {name[:100]}")
        return self._answer(request, name)


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every answer, JSON and errors too, carries the headers: a browser must never run or frame any of it."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        for key, value in SECURITY_HEADERS.items():
            exc.headers.setdefault(key, value)
        raise
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


def add_routes(app: web.Application) -> list[tuple[str, str]]:
    """The UI's routes; returns (method, path) of each, for the caller to declare public."""
    ui = StaticUi(load_files())
    for path in PAGE_PATHS:
        app.router.add_get(path, ui.page)
    app.router.add_get(ASSET_PREFIX + "{file}", ui.asset)
    return [("GET", path) for path in (*PAGE_PATHS, ASSET_PREFIX + "{file}")]
