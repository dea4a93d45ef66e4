"""Who may call the API: bearer tokens (agent.server.tokens) and Argo CD's RBAC (agent.policy.rbac).

With `[auth]` set, every route needs `Authorization: Bearer <token>` except the probes
(`/healthz`, `/readyz`), `/metrics` (unless `metrics_auth = true`) and the git webhook, which
keeps its own HMAC scheme. Each route declares the action it performs on `applications`
(`declare`); the object is `<project>/<app>`:

    401  no token, or one nobody holds          WWW-Authenticate: Bearer realm="gitops-agent"
    403  the subject may not do the action      {"error": "permission denied: sync applications payments/api ..."}

The app list shows only the apps the subject may `get`; a sync to another revision than the
tracked one also needs `override` (`require`, from the handler). Mutating calls are logged
with the subject; denials are logged as warnings. Without `[auth]` everything is allowed and
the subject is anonymous, as the log says of its mutating calls (the agent then listens on
loopback only, see agent.config.auth).
"""

from __future__ import annotations

import json
import logging
import ssl
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from agent.config import AuthSettings
from agent.model import ProjectSpec
from agent.policy import Rbac, Subject
from agent.server.tokens import TokenFile

log = logging.getLogger(__name__)

PUBLIC = "public"  # no token needed
AUTHENTICATED = "authenticated"  # any valid token; no object (lists filter what they show)
METRICS = "metrics"  # public, or AUTHENTICATED with `metrics_auth = true`
REALM = 'Bearer realm="gitops-agent"'
ANONYMOUS = "anonymous"  # the subject logged for a call to an API without [auth]
ProjectOf = Callable[[str], str | None]  # an app's project; None for an app that does not exist
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiAuth:
    """The token file and the RBAC enforcer; rebuilt parts on reload, the same object throughout."""

    def __init__(self, settings: AuthSettings, *, projects: Iterable[ProjectSpec]) -> None:
        self.settings = settings
        self.tokens = TokenFile(settings.token_file)
        self.rbac = Rbac.build(policy_csv=settings.policy_csv, policy_default=settings.policy_default,
                               projects=projects)

    def start(self) -> int:
        """Read the token file (ConfigError when it cannot be); the number of tokens."""
        return self.tokens.load()

    def reconfigure(self, settings: AuthSettings, *, projects: Iterable[ProjectSpec]) -> None:
        """New policies, default role or token file (a reload, or projects learned from Git)."""
        rbac = Rbac.build(policy_csv=settings.policy_csv, policy_default=settings.policy_default,
                          projects=projects)
        if settings.token_file != self.settings.token_file:
            tokens = TokenFile(settings.token_file)
            tokens.load()
            self.tokens = tokens
        self.settings, self.rbac = settings, rbac

    def authenticate(self, header: str | None) -> Subject | None:
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        return self.tokens.authenticate(token.strip())


@dataclass(frozen=True)
class Access:
    action: str  # PUBLIC, AUTHENTICATED, or an action on the app named in the path (get, sync, ...)


AUTH: web.AppKey[ApiAuth] = web.AppKey("auth", ApiAuth)
PROJECT_OF: web.AppKey[ProjectOf] = web.AppKey("project_of")
ROUTES: web.AppKey[dict[tuple[str, str], Access]] = web.AppKey("route_access")
SUBJECT = "subject"  # request key: the authenticated Subject


def declare(app: web.Application, method: str, path: str, action: str) -> None:
    """What a route does, for the middleware: PUBLIC, AUTHENTICATED or an action on `{name}`."""
    app[ROUTES][(method, path)] = Access(action)


def subject_of(request: web.Request) -> Subject | None:
    """Who called (None without [auth])."""
    subject = request.get(SUBJECT)
    return subject if isinstance(subject, Subject) else None


def may(request: web.Request, action: str, app: str) -> bool:
    """Whether the caller may do `action` to `app` (always, without [auth])."""
    auth, subject = request.app.get(AUTH), subject_of(request)
    if auth is None:
        return True
    project = request.app[PROJECT_OF](app)
    return subject is not None and project is not None and auth.rbac.allowed(subject, action, project, app)


ACTIONS = ("get", "refresh", "sync", "override", "rollback", "resume")


def permissions(request: web.Request, app: str) -> dict[str, bool]:
    """What the caller may do to `app`, action by action, evaluated as the routes evaluate it (a UI
    shows only the buttons that would work)."""
    return {action: may(request, action, app) for action in ACTIONS}
def may_in_project(request: web.Request, action: str, project: str) -> bool:
    """Whether the caller may do `action` to every app of `project` (`<project>/*`; always, without [auth]).
    The RBAC model has no `projects` resource: a project is as visible as all of its apps."""
    auth, subject = request.app.get(AUTH), subject_of(request)
    if auth is None:
        return True
    return subject is not None and auth.rbac.allowed(subject, action, project, "*")


def require(request: web.Request, action: str, app: str) -> None:
    """Raise 403 unless the caller may do `action` to `app` (a handler's check beyond the route's)."""
    if not may(request, action, app):
        raise _denied(request, action, app)


def _route_access(request: web.Request) -> Access:
    route = request.match_info.route
    resource = route.resource
    if resource is None:  # no route matched: a 404 or 405, but only for who may ask at all
        return Access(AUTHENTICATED)
    method = "GET" if request.method == "HEAD" else request.method
    return request.app.get(ROUTES, {}).get((method, resource.canonical), Access(AUTHENTICATED))


@web.middleware
async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth = request.app.get(AUTH)
    access = _route_access(request)
    if auth is None and access.action != PUBLIC and request.method not in ("GET", "HEAD"):
        # No [auth] (loopback, or insecure_no_auth): nobody to name, but the call is on record all the same.
        log.info("api request", extra={"subject": ANONYMOUS, "method": request.method, "path": request.path,
                                       "action": access.action})
    if auth is None or access.action == PUBLIC or (access.action == METRICS and not auth.settings.metrics_auth):
        return await handler(request)
    subject = auth.authenticate(request.headers.get("Authorization"))
    if subject is None:
        raise _unauthorized(request)
    request[SUBJECT] = subject
    name = request.match_info.get("name")
    if access.action not in (AUTHENTICATED, METRICS) and name is not None:
        if request.app[PROJECT_OF](name) is None:
            raise web.HTTPNotFound(text=json.dumps({"error": f"application {name} not found"}),
                                   content_type="application/json")
        require(request, access.action, name)
    if request.method not in ("GET", "HEAD"):
        log.info("api request", extra={"subject": subject.name, "method": request.method, "path": request.path,
                                       "action": access.action})
    return await handler(request)


def _unauthorized(request: web.Request) -> web.HTTPUnauthorized:
    has_header = "Authorization" in request.headers
    log.debug("api request unauthenticated", extra={"method": request.method, "path": request.path})
    challenge = f'{REALM}, error="invalid_token"' if has_header else REALM
    message = "the token is not valid" if has_header else "authentication required: send Authorization: Bearer <token>"
    return web.HTTPUnauthorized(text=json.dumps({"error": message}), content_type="application/json",
                                headers={"WWW-Authenticate": challenge})


def _denied(request: web.Request, action: str, app: str) -> web.HTTPForbidden:
    subject = subject_of(request)
    project = request.app[PROJECT_OF](app) or "?"
    who = subject.name if subject else "?"
    log.warning("api request denied", extra={"subject": who, "action": action, "object": f"{project}/{app}",
                                              "method": request.method, "path": request.path})
    message = f"permission denied: {action} applications {project}/{app} (subject {who})"
    return web.HTTPForbidden(text=json.dumps({"error": message}), content_type="application/json")


def server_tls(settings: AuthSettings | None) -> ssl.SSLContext | None:
    """The TLS context of the API when `[auth]` names a certificate and key; OSError/SSLError when unusable."""
    if settings is None or not settings.tls_cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.tls_cert_file, settings.tls_key_file)
    return context
