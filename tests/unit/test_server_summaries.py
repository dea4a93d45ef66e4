"""The application list: summaries are encoded once per state and dropped with their app."""

from __future__ import annotations

import json
from dataclasses import replace

from agent.model import AppState, AppStatus, SyncStatus
from agent.server.app import Declared, SummaryCache, app_summary


def test_the_list_is_the_summaries_in_order_and_follows_status_changes() -> None:
    cache = SummaryCache()
    shop = AppState.new("shop")
    ledger = AppState("ledger", AppStatus(name="ledger", sync_status=SyncStatus.SYNCED))
    first = json.loads(cache.body([(shop, Declared("payments")), (ledger, Declared("core", "team", "root"))]))
    assert first == [app_summary(shop, namespace="payments"),
                     app_summary(ledger, namespace="core", project="team", parent="root")]
    assert (first[1]["project"], first[1]["parent"], first[0]["parent"]) == ("team", "root", None)
    synced = replace(shop, status=replace(shop.status, sync_status=SyncStatus.SYNCED, reconciled_at=5.0))
    second = json.loads(cache.body([(synced, Declared("payments")), (ledger, Declared("moved"))]))
    assert second[0]["sync_status"] == "Synced" and second[0]["reconciled_at"] == 5.0
    assert second[1]["dest_namespace"] == "moved"
    assert json.loads(cache.body([])) == []


def test_an_unchanged_status_is_not_encoded_again() -> None:
    cache = SummaryCache()
    shop = AppState.new("shop")
    cache.body([(shop, Declared("payments"))])
    encoded = cache._encoded["shop"][2]
    cache.body([(shop, Declared("payments"))])
    assert cache._encoded["shop"][2] is encoded
    cache.body([(AppState.new("ledger"), Declared("core"))])
    assert "shop" not in cache._encoded


def test_the_whole_list_is_built_again_only_after_a_change_to_the_table() -> None:
    cache = SummaryCache()
    built: list[int] = []
    shop = AppState.new("shop")

    def apps() -> list[tuple[AppState, Declared]]:
        built.append(1)
        return [(shop, Declared("payments"))]

    first = cache.everything(1, apps)
    assert cache.everything(1, apps) is first and len(built) == 1, "a poll of an unchanged table costs nothing"
    shop = replace(shop, status=replace(shop.status, sync_status=SyncStatus.SYNCED))
    assert json.loads(cache.everything(2, apps))[0]["sync_status"] == "Synced" and len(built) == 2
