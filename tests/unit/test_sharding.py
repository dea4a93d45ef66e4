"""Sharding's pure parts: buckets and rendezvous hashing, each round's claims, member liveness on
the observer's clock, and the shared-state records and their compressed form."""

from __future__ import annotations

import gzip
import secrets
import time
from dataclasses import replace

import pytest

from agent.model import AppState, AutoSyncPause, HistoryEntry, OperationPhase, SyncTrigger
from agent.shard.buckets import BUCKETS, OwnerTable, bucket_of, decide, preferred
from agent.shard.members import MemberRecord, MemberView
from agent.shard.records import (
    BucketError,
    change_key,
    decode_lines,
    durable_record,
    encode_bucket,
    line,
    merged,
    record_of,
)

MEMBERS = ("a", "b", "c")


def test_bucket_of_is_stable_and_spreads_names() -> None:
    assert bucket_of("payments-api") == bucket_of("payments-api")
    assert 0 <= bucket_of("x") < BUCKETS
    used = {bucket_of(f"app-{i}") for i in range(2000)}
    assert len(used) == BUCKETS


def test_rendezvous_moves_only_the_buckets_of_a_member_that_leaves_or_joins() -> None:
    before = {bucket: preferred(bucket, MEMBERS) for bucket in range(BUCKETS)}
    assert set(before.values()) == set(MEMBERS)
    after = {bucket: preferred(bucket, ("a", "b")) for bucket in range(BUCKETS)}
    assert all(after[bucket] == owner for bucket, owner in before.items() if owner != "c")
    joined = {bucket: preferred(bucket, (*MEMBERS, "d")) for bucket in range(BUCKETS)}
    assert all(joined[bucket] in (owner, "d") for bucket, owner in before.items())
    assert preferred(0, ()) == ""


def table_of(owner: dict[int, str]) -> OwnerTable:
    return OwnerTable(tuple(owner.get(bucket, "") for bucket in range(BUCKETS)), 3)


def test_a_member_claims_the_free_buckets_it_is_preferred_for_and_no_others() -> None:
    decision = decide(OwnerTable(), me="a", alive=MEMBERS, dead=(), held=(), claiming=True)
    assert decision.claims == {b for b in range(BUCKETS) if preferred(b, MEMBERS) == "a"}
    assert not decision.releases and not decision.lost
    alone = decide(OwnerTable(), me="a", alive=("a",), dead=(), held=(), claiming=True)
    assert alone.claims == set(range(BUCKETS))
    assert not decide(OwnerTable(), me="a", alive=("a",), dead=(), held=(), claiming=False).writes


def test_a_live_owner_is_never_displaced_and_a_dead_ones_buckets_are_taken() -> None:
    table = table_of(dict.fromkeys(range(BUCKETS), "b"))
    in_doubt = decide(table, me="a", alive=("a",), dead=(), held=(), claiming=True)
    assert not in_doubt.claims, "b is neither alive nor seen dead: its buckets stay"
    taken = decide(table, me="a", alive=("a",), dead=("b",), held=(), claiming=True)
    assert taken.claims == set(range(BUCKETS))
    alive = decide(table, me="a", alive=("a", "b"), dead=(), held=(), claiming=True)
    assert not alive.claims


def test_an_owner_releases_what_another_live_member_is_preferred_for_and_stops_what_it_lost() -> None:
    mine = set(range(BUCKETS))
    table = table_of(dict.fromkeys(mine, "a"))
    decision = decide(table, me="a", alive=("a", "b"), dead=(), held=mine, claiming=True)
    assert decision.releases == {b for b in mine if preferred(b, ("a", "b")) == "b"}
    assert not decision.claims
    stolen = table_of({0: "b"} | {b: "a" for b in range(1, BUCKETS)})
    lost = decide(stolen, me="a", alive=("a",), dead=(), held=mine, claiming=True)
    assert lost.lost == {0}


def test_a_claim_that_lapsed_is_claimed_again_or_released() -> None:
    table = table_of(dict.fromkeys(range(BUCKETS), "a"))
    again = decide(table, me="a", alive=("a",), dead=(), held=(), claiming=True)
    assert again.claims == set(range(BUCKETS)), "recorded as ours, not held: claimed anew (the version moves)"
    stopping = decide(table, me="a", alive=("a",), dead=(), held=(), claiming=False)
    assert stopping.releases == set(range(BUCKETS))
    moved = table.changed(me="a", claims=(), releases={1, 2})
    assert moved.revision == table.revision + 1 and moved.owner(1) == "" and moved.buckets_of("a") == (
        frozenset(range(BUCKETS)) - {1, 2})


def record(identity: str, renew: str, *, seconds: int = 4) -> MemberRecord:
    return MemberRecord(name=f"m-{identity}", identity=identity, address=f"http://{identity}:8080",
                        renew_time=renew, lease_seconds=seconds)


def test_members_are_alive_while_their_record_changes_and_dead_after_a_lease_unchanged() -> None:
    view = MemberView(lease_duration=4.0)
    view.observe([record("a", "t1"), record("b", "t1")], referenced=(), now=100.0)
    assert set(view.alive(103.9)) == {"a", "b"}
    view.observe([record("a", "t2"), record("b", "t1")], referenced=(), now=103.0)
    assert set(view.alive(104.5)) == {"a"}
    assert view.dead(["a", "b"], 104.5) == {"b"}
    # An owner the table names whose Lease is gone is dead only after a whole lease duration.
    view.observe([record("a", "t3")], referenced=("c",), now=105.0)
    assert not view.is_dead("c", 108.9) and view.is_dead("c", 109.0)
    assert view.collectable(105.0, me="a") == []


def state_with_pause() -> AppState:
    entry = HistoryEntry(1, "a" * 40, "Dev", "one", SyncTrigger.AUTO, 1.0, 2.0, OperationPhase.SUCCEEDED)
    return replace(AppState.new("pay-api"), history=(entry,), pause=AutoSyncPause("rolled back", "b" * 40, 3.0),
                   notified={"on-deployed": "x"})


def test_a_record_keeps_pause_history_and_marks_and_merges_into_a_local_state() -> None:
    state = state_with_pause()
    rec = durable_record(state)
    raw = line(state.name, rec)
    payload = encode_bucket([raw])
    assert gzip.decompress(payload).startswith(b"gitops-agent shared state 1\n")
    lines = decode_lines(payload, where="ConfigMap ns/x-state-01")
    assert list(lines) == ["pay-api"]
    back = merged(AppState.new("pay-api"), record_of(lines["pay-api"], where="test"))
    assert (back.pause, back.history, back.notified) == (state.pause, state.history, state.notified)


def test_the_change_key_ignores_when_a_poll_ran() -> None:
    state = state_with_pause()
    later = replace(state, status=replace(state.status, reconciled_at=time.time()))
    assert change_key(durable_record(state)) == change_key(durable_record(later))
    resumed = replace(state, pause=None)
    assert change_key(durable_record(state)) != change_key(durable_record(resumed))


def test_an_unreadable_payload_names_the_object() -> None:
    with pytest.raises(BucketError, match="ConfigMap ns/x-state-02: not a gzip payload"):
        decode_lines(b"nope", where="ConfigMap ns/x-state-02")
    with pytest.raises(BucketError, match="not a shared state of format 1"):
        decode_lines(gzip.compress(b"other\n"), where="ConfigMap ns/x-state-02")


def test_ten_thousand_apps_stay_well_under_the_object_limit() -> None:
    """Measured, not timed: the largest bucket of 10,000 apps, each with ten history entries of commits
    of its own (random hex does not compress), compressed."""
    state = state_with_pause()
    per_bucket: dict[int, list[bytes]] = {}
    for i in range(10_000):
        name = f"service-{i:05d}"
        history = tuple(HistoryEntry(n, secrets.token_hex(20), "Dev <dev@example.com>", f"change {n}",
                                     SyncTrigger.AUTO, 1e9 + n, 1e9 + n + 3, OperationPhase.SUCCEEDED)
                        for n in range(10, 0, -1))
        app = replace(state, name=name, history=history)
        per_bucket.setdefault(bucket_of(name), []).append(line(name, durable_record(app)))
    largest = max(len(encode_bucket(lines)) for lines in per_bucket.values())
    print(f"largest bucket of 10,000 apps: {largest} bytes compressed")
    assert largest < 256 * 1024
