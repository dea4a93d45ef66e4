"""Resource hooks: which objects are hooks, how they are split from the desired state, named and judged."""

from __future__ import annotations

from typing import Any

import pytest

from agent.engine.desired import desired_state
from agent.engine.health import Health
from agent.engine.hooks import delete_policies, hook_name, hook_object, hook_result, hook_types, hooks_of
from agent.errors import RenderError
from agent.model import DeletePolicy, HealthStatus, HookType, Manifest, ObjectRef, OperationPhase

HOOK = "argocd.argoproj.io/hook"
POLICY = "argocd.argoproj.io/hook-delete-policy"


def job(name: str = "migrate", *, generate: bool = False, **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"generateName": name} if generate else {"name": name}
    meta["annotations"] = annotations
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": {"spec": {}}}}


def manifests(*objects: dict[str, Any]) -> list[Manifest]:
    return [Manifest(obj, "app/f.yaml", index) for index, obj in enumerate(objects)]


def namespaced(api_version: str, kind: str) -> bool:
    return kind != "Namespace"


def test_hook_types_in_both_spellings_and_several_per_object() -> None:
    assert hook_types(job(**{HOOK: "PreSync,PostSync"})) == {HookType.PRE_SYNC, HookType.POST_SYNC}
    assert hook_types(job(**{"gitops-agent.io/hook": " SyncFail "})) == {HookType.SYNC_FAIL}
    assert hook_types(job()) == frozenset()
    with pytest.raises(RenderError, match="unknown hook type 'PreSynk'"):
        hook_types(job(**{HOOK: "PreSynk"}))


def test_delete_policy_defaults_to_before_hook_creation() -> None:
    assert delete_policies(job(**{HOOK: "PreSync"})) == {DeletePolicy.BEFORE_HOOK_CREATION}
    assert delete_policies(job(**{POLICY: "HookSucceeded,HookFailed"})) == {DeletePolicy.HOOK_SUCCEEDED,
                                                                            DeletePolicy.HOOK_FAILED}
    with pytest.raises(RenderError, match="unknown hook delete policy"):
        delete_policies(job(**{POLICY: "Always"}))


def test_hooks_are_split_from_the_desired_state_and_never_marked_as_the_apps() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"}}
    state = desired_state("shop", manifests(config, job(**{HOOK: "PreSync,PostSync"})), namespace="payments",
                          is_namespaced=namespaced)
    assert [obj["metadata"]["name"] for obj in state.objects] == ["settings"]
    assert [(hook.phase, hook.ref.name, hook.ref.namespace) for hook in state.hooks] == [
        (HookType.PRE_SYNC, "migrate", "payments"), (HookType.POST_SYNC, "migrate", "payments")]
    template = state.hooks[0].template
    assert "gitops-agent.io/app" not in (template["metadata"].get("labels") or {})
    assert "gitops-agent.io/tracking-id" not in template["metadata"]["annotations"]


def test_skip_alone_is_a_resource_that_is_never_applied_and_with_others_is_ignored() -> None:
    state = desired_state("shop", manifests(job("skipped", **{HOOK: "Skip"}), job("both", **{HOOK: "Skip,Sync"})),
                          namespace="p", is_namespaced=namespaced)
    assert [obj["metadata"]["name"] for obj in state.objects] == ["skipped"]
    assert [(hook.phase, hook.ref.name) for hook in state.hooks] == [(HookType.SYNC, "both")]


def test_generate_name_is_for_hooks_only() -> None:
    state = desired_state("shop", manifests(job("migrate-", generate=True, **{HOOK: "PreSync"})), namespace="p",
                          is_namespaced=namespaced)
    (hook,) = state.hooks
    assert hook.generated and hook.ref == ObjectRef("batch", "Job", "p", "migrate-")
    with pytest.raises(RenderError, match="generateName is for hooks only"):
        desired_state("shop", manifests(job("plain-", generate=True)), namespace="p", is_namespaced=namespaced)


def test_a_helm_hook_gets_a_condition_and_is_synced_as_a_resource() -> None:
    state = desired_state("shop", manifests(job(**{"helm.sh/hook": "pre-install"})), namespace="p",
                          is_namespaced=namespaced)
    assert len(state.objects) == 1 and not state.hooks
    (warning,) = state.warnings
    assert "helm.sh/hook: 'pre-install' is not supported" in warning.message and "Job/p/migrate" in warning.message


def test_generated_names_are_fresh_per_sync_and_stable_within_one() -> None:
    (hook,) = hooks_of(job("upgrade-", generate=True, **{HOOK: "PreSync"}), wave=0, origin="f")
    first = hook_name(hook, revision="0123456789abcdef", started=1700000000.5)
    assert first == "upgrade-0123456-presync-1700000000"
    assert hook_name(hook, revision="0123456789abcdef", started=1700000000.9) == first
    assert hook_name(hook, revision="fedcba9876543210", started=1700000100.0) != first
    (named,) = hooks_of(job("migrate", **{HOOK: "PreSync"}), wave=0, origin="f")
    assert hook_name(named, revision="0123456789abcdef", started=1.0) == "migrate"


def test_a_hook_object_is_marked_as_the_apps_hook() -> None:
    (hook,) = hooks_of({**job("upgrade-", generate=True, **{HOOK: "PreSync"}), "metadata": {
        "generateName": "upgrade-", "namespace": "p", "annotations": {HOOK: "PreSync"}}}, wave=0, origin="f")
    obj = hook_object("shop", hook, "upgrade-abc")
    assert obj["metadata"]["name"] == "upgrade-abc" and "generateName" not in obj["metadata"]
    assert obj["metadata"]["labels"] == {"gitops-agent.io/hook-of": "shop"}
    assert obj["metadata"]["annotations"]["gitops-agent.io/hook-template"] == "PreSync:batch/Job:p/upgrade-"
    assert "generateName" in hook.template["metadata"], "the template is not changed"


@pytest.mark.parametrize(("health", "phase"), [
    (HealthStatus.HEALTHY, OperationPhase.SUCCEEDED), (HealthStatus.PROGRESSING, OperationPhase.RUNNING),
    (HealthStatus.SUSPENDED, OperationPhase.RUNNING), (HealthStatus.DEGRADED, OperationPhase.FAILED),
    (HealthStatus.UNKNOWN, OperationPhase.FAILED), (HealthStatus.MISSING, OperationPhase.FAILED)])
def test_hook_result_follows_health_as_gitops_engine_maps_it(health: HealthStatus, phase: OperationPhase) -> None:
    assert hook_result(Health(health, "why"))[0] is phase
