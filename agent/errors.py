"""The agent's errors.

    AgentError                  any failure the agent reports; may name an object
    ├── ConfigError             configuration file is invalid (file, table, key)
    ├── SourceError             git: unreachable, refused, unknown revision, unsafe path
    ├── RenderError             YAML or kustomize could not produce objects
    ├── UnexpectedError         a reconcile raised something no part of the agent expected (a bug)
    └── KubeError               the Kubernetes API refused or failed a request
        ├── KubeUnreachable     no answer from the API server at all
        │   └── NotLeader       this replica may not write: it does not hold the leader lease
        ├── KubeNotFound        404
        ├── KubeConflict        409
        └── KubeInvalid         422 and other 4xx: the object or request is wrong

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


class KubeError(AgentError):
    def __init__(self, message: str, *, status: int = 0, reason: str = "", ref: ObjectRef | None = None) -> None:
        super().__init__(message, ref=ref)
        self.status = status
        self.reason = reason


class KubeUnreachable(KubeError):
    pass


class NotLeader(KubeUnreachable):
    """A write refused before it was sent, because this replica does not (or no longer) hold
    the leader lease. A KubeUnreachable, so a sync stops at once instead of trying the next object."""


class KubeNotFound(KubeError):
    pass


class KubeConflict(KubeError):
    pass


class KubeInvalid(KubeError):
    pass
