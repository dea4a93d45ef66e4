"""The application list: summaries are encoded once per state and dropped with their app."""

from __future__ import annotations

import json
from dataclasses import replace

from agent.model import AppState, AppStatus, SyncStatus
from agent.server.app import SummaryCache, app_summary


def test_the_list_is_the_summaries_in_order_and_follows_status_changes() -> None:
    cache = SummaryCache()
    shop = AppState.new("shop")
    ledger = AppState("ledger", AppStatus(name="ledger", sync_status=SyncStatus.SYNCED))
    first = json.loads(cache.body([(shop, "payments", "shop"), (ledger, "core", "default")]))
    assert first == [app_summary(shop, namespace="payments", project="shop"),
                     app_summary(ledger, namespace="core", project="default")]
    synced = replace(shop, status=replace(shop.status, sync_status=SyncStatus.SYNCED, reconciled_at=5.0))
    second = json.loads(cache.body([(synced, "payments", "shop"), (ledger, "moved", "default")]))
    assert second[0]["sync_status"] == "Synced" and second[0]["reconciled_at"] == 5.0
    assert second[1]["dest_namespace"] == "moved" and second[0]["project"] == "shop"
    assert json.loads(cache.body([])) == []


def test_an_unchanged_status_is_not_encoded_again() -> None:
    cache = SummaryCache()
    shop = AppState.new("shop")
    cache.body([(shop, "payments", "default")])
    encoded = cache._encoded["shop"][2]
    cache.body([(shop, "payments", "default")])
    assert cache._encoded["shop"][2] is encoded
    cache.body([(AppState.new("ledger"), "core", "default")])
    assert "shop" not in cache._encoded
