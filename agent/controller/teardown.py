"""Delete what an app removed from the configuration owns, when it had `prune_on_delete = true`.

The decision is agent.engine.teardown's; this module lists and deletes. Each deletion
(and each object kept, or that could not be deleted) is an audit event. A failed
deletion does not stop the others; an unreachable API server stops them all. Nothing
retries later: the app is gone from the configuration, so what is left is logged for
a person to handle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from agent import APP_LABEL
from agent.argocd import is_definition
from agent.config import AppSpec
from agent.controller.claims import ClaimIndex
from agent.engine.teardown import deletion_plan
from agent.errors import KubeError, KubeUnreachable
from agent.kube import Deleted, KubeClient, preconditions
from agent.model import HookRun, KubeObject, ObjectRef

log = logging.getLogger(__name__)

Kind = tuple[str, str]  # (apiVersion, kind)
CHANGED_SINCE_LISTED = "changed, or was created again, since it was listed (precondition failed)"


@dataclass(frozen=True)
class Teardown:
    deleted: tuple[ObjectRef, ...] = ()
    kept: tuple[tuple[ObjectRef, str], ...] = ()  # and why
    failed: tuple[tuple[ObjectRef, str], ...] = ()  # and the error
    hooks: tuple[HookRun, ...] = ()  # the PostDelete hooks run afterwards (agent.controller.post_delete)


async def delete_owned(kube: KubeClient, app: AppSpec, kinds: Iterable[Kind], *,
                       namespaces: Iterable[str] = (), claims: ClaimIndex | None = None,
                       keep: Callable[[ObjectRef], str] | None = None) -> Teardown:
    """List the app's labelled objects of `kinds` and delete those it owns that are not protected
    (`keep`: why an object must stay, such as being outside the app's project).

    `namespaces` are listed one by one where listing across all namespaces is forbidden
    (the destination namespace always is). Raises KubeError when the objects cannot be
    listed: then nothing was deleted.
    """
    live: dict[ObjectRef, KubeObject] = {}
    spread = set(namespaces) | {app.namespace}
    for api_version, kind in sorted(set(kinds)):
        for obj in await kube.list_labelled(api_version, kind, f"{APP_LABEL}={app.name}", namespaces=spread):
            if not is_definition(obj):  # configuration, never the app's object (see agent.controller.observe)
                live[ObjectRef.of(obj)] = obj
    plan = deletion_plan(app.name, live, claims.claims(app.name, live) if claims is not None else None, keep=keep)
    for candidate in plan.kept:
        _audit(f"kept: {candidate.blocked}", app.name, candidate.ref, "kept")
    deleted: list[ObjectRef] = []
    failed: list[tuple[ObjectRef, str]] = []
    kept = [(c.ref, c.blocked) for c in plan.kept]
    for index, candidate in enumerate(plan.delete):
        try:
            outcome = await kube.delete(candidate.live, only_if=preconditions(candidate.live))
        except KubeUnreachable as exc:  # no other object will fare better: stop here
            failed += [(c.ref, exc.message) for c in plan.delete[index:]]
            _audit("delete failed", app.name, candidate.ref, "failed", error=exc.message)
            break
        except KubeError as exc:
            failed.append((candidate.ref, exc.message))
            _audit("delete failed", app.name, candidate.ref, "failed", error=exc.message)
            continue
        if outcome is Deleted.CHANGED:  # someone else's object now: never deleted
            kept.append((candidate.ref, CHANGED_SINCE_LISTED))
            _audit(f"kept: {CHANGED_SINCE_LISTED}", app.name, candidate.ref, "kept")
            continue
        deleted.append(candidate.ref)
        _audit("deleted", app.name, candidate.ref, "deleted")
    return Teardown(tuple(deleted), tuple(kept), tuple(failed))


def _audit(message: str, app: str, ref: ObjectRef, action: str, *, error: str = "") -> None:
    extra = {"app": app, "object": str(ref), "action": action, "trigger": "prune_on_delete"}
    if error:
        extra["error"] = error
    level = logging.WARNING if action == "failed" else logging.INFO
    log.log(level, message, extra=extra)
