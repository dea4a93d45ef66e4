"""Stopping an app that is no longer declared: by the configuration (SIGHUP) or by its parent's render.

Its reconcile in flight finishes, its loop ends, its status and metric series go. Its objects
stay, unless it is removed with `delete_resources` (`prune_on_delete = true`, Argo CD's
resources finalizer): then what it owns is deleted (agent.controller.teardown) and its
PostDelete hooks run. Nothing here decides whether an app goes; its callers do.
"""

from __future__ import annotations

import logging

from agent.config import AppSpec
from agent.controller.host import ControllerParts
from agent.controller.teardown import Teardown
from agent.errors import AgentError
from agent.shard.acting import acting_for

log = logging.getLogger("agent.controller.controller")  # the events' logger name stays the controller's


async def remove_app(controller: ControllerParts, spec: AppSpec, *, delete_resources: bool,
                     why: str) -> Teardown | None:
    """Stop the app; with `delete_resources`, delete what it owns first. `why` is said to requests
    still waiting and logged."""
    worker = controller.apps.workers[spec.name]
    async with worker.lock:
        await controller.cancel_loop(worker, why)
        with acting_for(spec.name):  # the write gate asks for whom (sharding)
            teardown = await _teardown(controller, spec) if delete_resources else None
        controller.apps.remove(spec.name, keep=not delete_resources)
    if not delete_resources:
        log.info("%s; its objects stay in the cluster", why, extra={"app": spec.name})
    return teardown


async def _teardown(controller: ControllerParts, spec: AppSpec) -> Teardown | None:
    """Delete what a removed app owns; None when nothing could be looked at."""
    if not controller.running:
        log.warning("application removed with prune_on_delete, but this replica does not lead: "
                    "nothing deleted", extra={"app": spec.name})
        return None
    if not controller.runs(spec.name):  # sharding: only the replica running the app writes for it
        log.info("application removed with prune_on_delete; it runs on another replica, which deletes its "
                 "objects", extra={"app": spec.name})
        return None
    problem = "cannot list its objects; nothing deleted"
    failed = await controller.ensure_inventory(controller.apps.workers[spec.name])  # what it owns, if not known
    state = controller.apps.state(spec.name)
    if failed is not None or state is None:
        log.error("application removed with prune_on_delete: %s", problem,
                  extra={"app": spec.name, "error": str(failed)})
        return None
    try:
        teardown = await controller.reconciler.delete_owned(
            spec, state.owned_kinds, {entry.ref.namespace for entry in state.inventory if entry.ref.namespace})
    except AgentError as exc:  # the API's answer, an unreachable or unknown cluster: nothing deleted
        log.error("application removed with prune_on_delete: %s", problem, extra={"app": spec.name, "error": str(exc)})
        return None
    level = logging.WARNING if teardown.failed else logging.INFO
    log.log(level, "application removed with prune_on_delete: %d objects deleted, %d kept, %d failed, "
            "%d PostDelete hooks run", len(teardown.deleted), len(teardown.kept), len(teardown.failed),
            len(teardown.hooks), extra={"app": spec.name})
    return teardown
