"""An app's loop survives whatever its reconcile raises; careless metadata is a render error."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import pytest

from agent.config import AgentSettings, AppSpec, Settings
from agent.controller import Controller
from agent.controller.inventory import RebuiltInventory
from agent.controller.reconcile import AppReconciler, Outcome, ReconcileResult
from agent.errors import RenderError, UnexpectedError
from agent.metrics import Metrics
from agent.model import AppState, AppStatus, ConditionType, OperationRequest, SyncStatus
from agent.render import parse_stream


class FlakyReconciler:
    """Raises what it is told to, once per entry of `failures`, then answers with an empty result."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = failures
        self.calls = 0
        self.called = asyncio.Event()

    async def rebuild_inventories(self, apps: Any) -> RebuiltInventory:
        return RebuiltInventory(entries={})

    async def reconcile(self, app: AppSpec, state: AppState, request: Any = None, **_: Any) -> Outcome:
        self.calls += 1
        self.called.set()
        if self.failures:
            raise self.failures.pop(0)
        status = AppStatus(name=app.name)  # compared fine: no condition
        return Outcome(ReconcileResult(app.name, 0.0, 0.0, status), replace(state, status=status))

    def forget_revisions(self, repo: str) -> None:
        return None

    async def check_manual_revision(self, app: AppSpec, requested: str, history: Any) -> None:
        return None

    async def close(self) -> None:
        return None


def controller_for(reconciler: FlakyReconciler, tmp_path: Path) -> Controller:
    app = AppSpec(name="shop", repo="https://git.example.com/shop.git", revision="main", path="app")
    agent = AgentSettings(state_dir=tmp_path, poll_interval=3600.0, poll_jitter=0.0)
    return Controller(Settings(agent=agent, applications=(app,)), cast(AppReconciler, reconciler), Metrics(),
                      random_fraction=lambda: 0.0)


async def test_an_unexpected_exception_becomes_status_and_answer_and_the_loop_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    failures: list[Exception] = [TypeError("unhashable type: 'list'"), TypeError("unhashable type: 'list'")]
    reconciler = FlakyReconciler(failures)
    controller = controller_for(reconciler, tmp_path)
    controller.start()
    try:
        with caplog.at_level(logging.ERROR, logger="agent.controller.controller"):
            # Asked before the loop first runs: every reconcile below is one of these requests.
            async with asyncio.timeout(5):
                answer = await controller.sync_now("shop", OperationRequest())
            assert answer is not None and isinstance(answer.error, UnexpectedError)  # answered, not left waiting
            status = controller.status("shop")
            assert status is not None and status.sync_status is SyncStatus.UNKNOWN
            assert [c.type for c in status.conditions] == [ConditionType.UNKNOWN_ERROR]
            assert status.message == ("unexpected TypeError while reconciling: unhashable type: 'list' "
                                      "(the agent's log has the traceback)")
            async with asyncio.timeout(5):
                again = await controller.sync_now("shop", OperationRequest())
                assert again is not None and isinstance(again.error, UnexpectedError)
                recovered = await controller.sync_now("shop", OperationRequest())
        assert recovered is not None and recovered.error is None  # the loop went on
        assert reconciler.calls == 3
        tracebacks = [r for r in caplog.records if r.exc_info is not None]
        assert len(tracebacks) == 1  # the same failure twice: one traceback
        status = controller.status("shop")
        assert status is not None and status.conditions == ()
    finally:
        await controller.stop(drain_timeout=1)


@pytest.mark.parametrize(
    ("metadata", "problem"),
    [
        ("{name: web, labels: [x]}", "ConfigMap 'web': metadata.labels must be a map of strings, not a list"),
        ("{name: web, labels: {version: 1}}", "ConfigMap 'web': metadata.labels.version must be a string, "
                                              "not a number"),
        ("{name: web, annotations: {a: true}}", "ConfigMap 'web': metadata.annotations.a must be a string, "
                                                "not a boolean"),
        ("{name: web, annotations: x}", "ConfigMap 'web': metadata.annotations must be a map of strings, "
                                        "not a string"),
        ("{name: web, namespace: {a: b}}", "ConfigMap 'web': metadata.namespace must be a string, not a map"),
        ("{name: 42}", "ConfigMap: metadata.name must be a string, not a number"),
        ("{name: web, labels: {1: a}}", "ConfigMap 'web': metadata.labels: the key 1 must be a string, not a number"),
    ],
)
def test_metadata_of_the_wrong_type_is_a_render_error(metadata: str, problem: str) -> None:
    with pytest.raises(RenderError) as caught:
        parse_stream("app/cm.yaml", f"apiVersion: v1\nkind: ConfigMap\nmetadata: {metadata}\n".encode())
    assert str(caught.value) == f"app/cm.yaml: document 1: {problem}"


def test_empty_labels_and_annotations_are_fine() -> None:
    (manifest,) = parse_stream("cm.yaml", b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, labels: null, "
                                          b"annotations: {}}\n")
    assert manifest.obj["metadata"]["name"] == "a"
