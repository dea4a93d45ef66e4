"""Resource hooks (Argo CD's `argocd.argoproj.io/hook`), as plain data.

A `Hook` is what Git declares for one phase: a template object (with `metadata.name`, or
`metadata.generateName` for a fresh name each sync) that a sync creates in its phase and
waits for. A `HookRun` is one hook in one sync: the object created, and how it went. Runs
live in the SyncOperation (so a sync carried on after a restart does not run a finished
hook again) and in the sync history.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from agent.model.core import KubeObject, ObjectRef, OperationPhase


class HookType(enum.StrEnum):
    """When a hook runs. `Skip` marks an ordinary resource that a sync never applies."""

    PRE_SYNC = "PreSync"
    SYNC = "Sync"
    POST_SYNC = "PostSync"
    SYNC_FAIL = "SyncFail"
    POST_DELETE = "PostDelete"
    SKIP = "Skip"

    @property
    def rank(self) -> int:
        """Phase order, as gitops-engine sorts tasks: PreSync, Sync, PostSync, SyncFail."""
        return _PHASE_ORDER.index(self) if self in _PHASE_ORDER else len(_PHASE_ORDER)


_PHASE_ORDER = [HookType.PRE_SYNC, HookType.SYNC, HookType.POST_SYNC, HookType.SYNC_FAIL]


class DeletePolicy(enum.StrEnum):
    """`argocd.argoproj.io/hook-delete-policy`; BeforeHookCreation when none is given."""

    BEFORE_HOOK_CREATION = "BeforeHookCreation"
    HOOK_SUCCEEDED = "HookSucceeded"  # deleted when the sync operation succeeds
    HOOK_FAILED = "HookFailed"  # deleted when the sync operation fails


@dataclass(frozen=True)
class Hook:
    """One hook of one phase, as rendered: `template` is placed (namespace) and marked as a hook of
    the app; its `metadata.name` is empty when it has a `generateName`."""

    phase: HookType
    template: KubeObject
    wave: int
    delete_policies: frozenset[DeletePolicy]
    origin: str = ""  # the file and document it came from, for messages

    @property
    def ref(self) -> ObjectRef:
        """The template's identity; its name is `metadata.name`, or `generateName` for a generated one."""
        meta = self.template.get("metadata") or {}
        ref = ObjectRef.of(self.template)
        return ref if ref.name else ObjectRef(ref.group, ref.kind, ref.namespace, str(meta.get("generateName", "")))

    @property
    def generated(self) -> bool:
        return not (self.template.get("metadata") or {}).get("name")

    @property
    def api_version(self) -> str:
        return str(self.template.get("apiVersion", ""))

    def runs_as(self, run: HookRun) -> bool:
        """Whether `run` is this hook's run in the current operation."""
        return run.phase is self.phase and run.template == self.ref


@dataclass(frozen=True)
class HookRun:
    """One hook in one sync operation: the object created for it and its result so far.

    `status` is Argo CD's hook phase: Running until the object is healthy (a Job completed,
    a Pod succeeded) or failed (Degraded); Error when it could not be created.
    """

    phase: HookType
    template: ObjectRef  # the hook's identity in Git (see Hook.ref)
    ref: ObjectRef  # the object created (a generated name differs from the template's)
    api_version: str
    wave: int
    status: OperationPhase
    message: str = ""
    deleted: bool = False  # removed by its delete policy after the operation ended

    @property
    def done(self) -> bool:
        return self.status is not OperationPhase.RUNNING
