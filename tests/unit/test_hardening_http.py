"""Strangers on the network: forged browser requests, flooded queues (the aiohttp app, a stub reconciler)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agent.config import AgentSettings, AppSpec, Settings
from agent.controller import Controller, QueueFull
from agent.controller.inventory import RebuiltInventory
from agent.controller.reconcile import AppReconciler, Outcome, ReconcileResult
from agent.controller.worker import MAX_QUEUED_REQUESTS
from agent.metrics import Metrics
from agent.model import AppState, OperationRequest
from agent.server import build_app
from agent.server.guard import refusal

JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("POST", "/api/v1/applications/a/sync", {"Content-Type": "text/plain"}, 415),
        ("POST", "/api/v1/applications/a/sync", {"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ("POST", "/api/v1/applications/a/refresh", {}, 415),
        ("POST", "/api/v1/applications/a/sync", {"Content-Type": "application/json; charset=utf-8"}, None),
        ("POST", "/api/v1/applications/a/sync", {**JSON, "Sec-Fetch-Site": "cross-site"}, 403),
        ("POST", "/api/v1/applications/a/sync", {**JSON, "Sec-Fetch-Site": "same-site"}, 403),
        ("POST", "/api/v1/applications/a/sync", {**JSON, "Sec-Fetch-Site": "same-origin"}, None),
        ("POST", "/api/v1/applications/a/sync", {**JSON, "Origin": "https://evil.example", "Host": "127.0.0.1:8080"},
         403),
        ("POST", "/api/v1/applications/a/sync", {**JSON, "Origin": "null", "Host": "127.0.0.1:8080"}, 403),
        ("POST", "/api/v1/applications/a/sync", {**JSON, "Origin": "http://127.0.0.1:8080", "Host": "127.0.0.1:8080"},
         None),
        ("POST", "/api/v1/applications/a/sync", {**JSON, "Origin": "http://127.0.0.1:9090", "Host": "127.0.0.1:8080"},
         403),
        # Behind a TLS-terminating proxy that keeps the Host: the scheme differs, the host does not.
        ("POST", "/api/v1/applications/a/sync", {**JSON, "Origin": "https://gitops.example.com",
                                                  "Host": "gitops.example.com"}, None),
        ("GET", "/api/v1/applications", {"Sec-Fetch-Site": "cross-site"}, 403),
        ("GET", "/api/v1/applications", {}, None),
        ("POST", "/api/webhook", {"Content-Type": "application/x-www-form-urlencoded", "Origin": "https://x"}, None),
    ],
)
def test_forged_browser_requests_are_refused(method: str, path: str, headers: dict[str, str],
                                             status: int | None) -> None:
    refused = refusal(method, path, headers)
    assert (refused[0] if refused else None) == status


class BlockingReconciler:
    """Holds every reconcile until released, counting them."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.calls = 0

    async def rebuild_inventories(self, apps: Any) -> RebuiltInventory:
        return RebuiltInventory(entries={})

    async def reconcile(self, app: AppSpec, state: AppState, request: Any = None, **_: Any) -> Outcome:
        self.calls += 1
        self.started.set()
        await self.release.wait()
        return Outcome(ReconcileResult(app.name, 0.0, 0.0, state.status), state)

    def forget_revisions(self, repo: str) -> None:
        return None

    async def check_manual_revision(self, app: AppSpec, requested: str, history: Any) -> None:
        return None

    async def close(self) -> None:
        return None


@pytest.fixture
async def blocked(tmp_path: Path) -> AsyncIterator[tuple[Controller, BlockingReconciler]]:
    reconciler = BlockingReconciler()
    app = AppSpec(name="shop", repo="https://git.example.com/shop.git", revision="main", path="app")
    agent = AgentSettings(state_dir=tmp_path, poll_interval=3600.0, poll_jitter=0.0)
    controller = Controller(Settings(agent=agent, applications=(app,)), cast(AppReconciler, reconciler), Metrics())
    controller.start()
    await asyncio.wait_for(reconciler.started.wait(), timeout=5)  # the loop's first reconcile now holds the app
    yield controller, reconciler
    reconciler.release.set()
    await controller.stop(drain_timeout=1)


async def test_identical_requests_share_one_operation_and_distinct_ones_are_capped(
    blocked: tuple[Controller, BlockingReconciler]
) -> None:
    controller, reconciler = blocked
    same = [asyncio.ensure_future(controller.sync_now("shop", OperationRequest(dry_run=True))) for _ in range(50)]
    others = [asyncio.ensure_future(controller.sync_now("shop", OperationRequest(revision=f"v{i}")))
              for i in range(MAX_QUEUED_REQUESTS - 1)]
    await asyncio.sleep(0)  # let each reach the queue
    with pytest.raises(QueueFull, match=r"^application shop already has 4 operations waiting; try again"):
        await controller.sync_now("shop", OperationRequest(revision="one too many"))
    reconciler.release.set()
    results = await asyncio.wait_for(asyncio.gather(*same, *others), timeout=5)
    assert len({id(result) for result in results[:50]}) == 1  # one result for the fifty identical requests
    assert reconciler.calls == 1 + 1 + (MAX_QUEUED_REQUESTS - 1)


async def test_the_api_answers_a_full_queue_with_429(blocked: tuple[Controller, BlockingReconciler]) -> None:
    controller, reconciler = blocked

    async def ok() -> str:
        return "v1.34.2"

    async with TestClient(TestServer(build_app(controller=controller, metrics_=Metrics(), kube_check=ok))) as client:
        waiting = [asyncio.ensure_future(client.post("/api/v1/applications/shop/sync", json={"revision": f"v{i}"}))
                   for i in range(MAX_QUEUED_REQUESTS)]
        for _ in range(200):  # until the four are queued behind the reconcile that holds the app
            if _queued(controller) == MAX_QUEUED_REQUESTS:
                break
            await asyncio.sleep(0.01)
        response = await client.post("/api/v1/applications/shop/sync", json={"revision": "v9"})
        assert response.status == 429 and response.headers["Retry-After"] == "5"
        assert "already has 4 operations waiting" in (await response.json())["error"]
        forged = await client.post("/api/v1/applications/shop/sync", data="{}", headers={"Content-Type": "text/plain"})
        assert forged.status == 415
        reconciler.release.set()
        statuses = [(await asyncio.wait_for(answer, timeout=5)).status for answer in waiting]
        assert statuses == [200] * MAX_QUEUED_REQUESTS


def _queued(controller: Controller) -> int:
    return len(controller.apps.workers["shop"].requests)
