"""The agent's errors.

    AgentError                  any failure the agent reports; may name an object
    ├── ConfigError             configuration file is invalid (file, table, key)
    ├── SourceError             git: unreachable, refused, unknown revision, unsafe path
    ├── RenderError             YAML or kustomize could not produce objects
    ├── UnexpectedError         a reconcile raised something no part of the agent expected (a bug)
    ├── UnknownCluster          an app names a cluster (name or server) the agent does not know
    ├── NotPermitted            the app's project does not exist, or refuses its repository or destination
    ├── InvalidSpec             an app cannot run as declared (an adopted Argo CD definition refused)
    ├── KubeUnreachable         no answer from the API server at all (network, TLS, timeout)
    │   └── NotLeader           this replica may not write: it does not hold the leader lease
    └── KubeError               the API server answered, with an error status
        ├── KubeForbidden       403
        ├── KubeNotFound        404
        ├── KubeConflict        409 (also a failed precondition)
        ├── KubeInvalid         422 and other 4xx: the object or request is wrong
        └── KubeServerError     5xx, and 429 when retrying did not help

Unreachable is a sibling of the API's answers, not one of them: `except KubeError` handles
what the server said about one request, and an unreachable server (which no other object
will fare better with) passes through it untouched.

An error about one object begins with that object's identity
(`Deployment/payments/api: ...`), as `str()` shows it.
"""

from __future__ import annotations

from agent.model import ObjectRef

MAX_MESSAGE = 2000


class AgentError(Exception):
    def __init__(self, message: str, *, ref: ObjectRef | None = None) -> None:
        if len(message) > MAX_MESSAGE:
            message = message[:MAX_MESSAGE] + "…"
        super().__init__(message)
        self.message = message
        self.ref = ref

    def __str__(self) -> str:
        return f"{self.ref}: {self.message}" if self.ref else self.message


class ConfigError(AgentError):
    pass


class SourceError(AgentError):
    pass


class RenderError(AgentError):
    pass


class UnexpectedError(AgentError):
    """Any other exception out of one app's reconcile: it costs that app this reconcile, never its loop."""


class UnknownCluster(AgentError):
    """An app's destination names no known cluster, or names one twice over (name and server)."""


class NotPermitted(AgentError):
    """The app's project does not exist, or does not permit its repository or destination: nothing is
    fetched, applied or pruned (Argo CD's InvalidSpecError)."""


class InvalidSpec(AgentError):
    """An app that cannot run as it is declared: an adopted Argo CD definition refused. Shown as its
    condition until the declaration changes."""


class KubeUnreachable(AgentError):
    pass


class NotLeader(KubeUnreachable):
    """A write refused before it was sent, because this replica does not (or no longer) hold
    the leader lease. Unreachable, as far as writing goes: a sync stops at once instead of
    trying the next object."""


class KubeError(AgentError):
    def __init__(self, message: str, *, status: int = 0, reason: str = "", ref: ObjectRef | None = None) -> None:
        super().__init__(message, ref=ref)
        self.status = status
        self.reason = reason


class KubeForbidden(KubeError):
    pass


class WatchExpired(KubeError):
    """A watch's resourceVersion is too old (410 Gone): list again."""


class KubeNotFound(KubeError):
    pass


class KubeConflict(KubeError):
    pass


class KubeInvalid(KubeError):
    pass


class KubeServerError(KubeError):
    pass


def api_error_class(status: int) -> type[KubeError]:
    """The error class for an HTTP status the API server answered with."""
    specific = {403: KubeForbidden, 404: KubeNotFound, 409: KubeConflict}.get(status)
    if specific is not None:
        return specific
    if status == 429 or status >= 500:
        return KubeServerError
    return KubeInvalid if 400 <= status < 500 else KubeError
