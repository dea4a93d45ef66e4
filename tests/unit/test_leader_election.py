"""Leader election decisions with an injected clock: who may take a Lease, when, and when the leader must stop.

The Lease store here is a minimal stand-in with the API server's optimistic concurrency
(resourceVersion, 404, 409), so the timing rules can be checked step by step;
tests/integration/test_leader_*.py run the same code against the real API server.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from agent.config import LeaderElectionSettings
from agent.errors import KubeConflict, KubeNotFound, KubeUnreachable
from agent.leader import LeaderElector, LeaseRecord, micro_time

SETTINGS = LeaderElectionSettings(enabled=True, name="lead", lease_duration=15.0, renew_deadline=10.0,
                                  retry_period=2.0)


class LeaseStore:
    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.version = 0
        self.down = False

    async def request(self, method: str, path: str, *, query: dict[str, str] | None = None, body: Any = None,
                      content_type: str = "application/json", kind: str = "") -> Any:
        if self.down:
            raise KubeUnreachable("connection refused")
        if method == "GET":
            if self.lease is None:
                raise KubeNotFound("leases.coordination.k8s.io \"lead\" not found", status=404)
            return copy.deepcopy(self.lease)
        if method == "POST":
            if self.lease is not None:
                raise KubeConflict("already exists", status=409)
            return self._store(body)
        assert method == "PUT"
        assert self.lease is not None
        if body["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise KubeConflict("the object has been modified", status=409)
        return self._store(body)

    def _store(self, body: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        self.lease = copy.deepcopy(body)
        self.lease["metadata"]["resourceVersion"] = str(self.version)
        return copy.deepcopy(self.lease)

    @property
    def holder(self) -> str:
        return LeaseRecord.of(self.lease or {}).holder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def elector(store: LeaseStore, clock: Clock, identity: str, events: list[str]) -> LeaderElector:
    async def stopped() -> None:
        events.append(f"{identity} stopped")

    return LeaderElector(store, SETTINGS, namespace="ns", identity=identity,
                         on_started=lambda: events.append(f"{identity} started"), on_stopped=stopped,
                         clock=clock, wall=lambda: datetime.fromtimestamp(clock.now, UTC), jitter=lambda: 0.0)


async def test_first_candidate_creates_the_lease_and_the_second_follows() -> None:
    store, clock, events = LeaseStore(), Clock(), []
    first, second = elector(store, clock, "a", events), elector(store, clock, "b", events)
    assert await first._attempt() is True
    assert store.holder == "a" and LeaseRecord.of(store.lease or {}).lease_seconds == 15
    assert await second._attempt() is False
    assert second.holder == "a" and not second.is_leader and second.settled


async def test_a_follower_waits_the_lease_duration_from_when_it_saw_the_record_change() -> None:
    store, clock, events = LeaseStore(), Clock(), []
    first, second = elector(store, clock, "a", events), elector(store, clock, "b", events)
    await first._attempt()
    assert await second._attempt() is False  # sees a's record at t=1000
    clock.now += 14.9
    assert await second._attempt() is False
    clock.now += 0.2  # 15.1 s after it last saw the record change
    assert await second._attempt() is True
    record = LeaseRecord.of(store.lease or {})
    assert (record.holder, record.transitions) == ("b", 1)
    assert record.acquire_time == micro_time(datetime.fromtimestamp(clock.now, UTC))


async def test_renewals_keep_followers_out() -> None:
    store, clock, events = LeaseStore(), Clock(), []
    first, second = elector(store, clock, "a", events), elector(store, clock, "b", events)
    await first._attempt()
    for _ in range(20):  # 40 s of renewals every 2 s
        clock.now += 2
        assert await first._attempt() is True
        assert await second._attempt() is False
    assert store.holder == "a"


async def test_the_leader_gate_closes_at_the_renew_deadline_before_anyone_else_may_take_over() -> None:
    store, clock, events = LeaseStore(), Clock(), []
    first = elector(store, clock, "a", events)
    await first._attempt()
    first._leading = True
    clock.now += 9.9
    assert first.is_leader
    clock.now += 0.2  # 10.1 s without a renewal: no more writes, though followers must wait until 15 s
    assert not first.is_leader


async def test_losing_renewals_ends_leadership_within_the_renew_deadline() -> None:
    store, clock, events = LeaseStore(), Clock(), []
    first = elector(store, clock, "a", events)

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    first._sleep = sleep
    await first._acquire()
    first._begin_leading()
    store.down = True
    reason = await first._renew_until_lost()
    assert reason == "not renewed within 10s"
    assert clock.now - 1000.0 <= 10.0 + 2.0
    await first._end_leading(reason)
    assert events == ["a started", "a stopped"]
    assert not first.is_leader


async def test_a_lease_taken_by_another_identity_ends_leadership_at_once() -> None:
    store, clock, events = LeaseStore(), Clock(), []
    first = elector(store, clock, "a", events)

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        if clock.now >= 1004 and store.holder == "a":  # someone else writes itself in (kubectl edit, a bug)
            assert store.lease is not None
            store.lease["spec"]["holderIdentity"] = "b"
            store.lease["spec"]["renewTime"] = micro_time(datetime.fromtimestamp(clock.now, UTC))
            store.version += 1
            store.lease["metadata"]["resourceVersion"] = str(store.version)

    first._sleep = sleep
    await first._acquire()
    first._begin_leading()
    reason = await first._renew_until_lost()
    assert reason == "lease taken by b"
    assert clock.now < 1000 + SETTINGS.renew_deadline


async def test_release_hands_the_lease_over_after_one_retry() -> None:
    store, clock, events = LeaseStore(), Clock(), []
    first, second = elector(store, clock, "a", events), elector(store, clock, "b", events)
    await first._attempt()
    first._leading = True
    assert await second._attempt() is False
    await first.release()
    assert store.holder == "" and not first.is_leader
    assert await second._attempt() is True  # a released lease is free at once
    await first.release()  # not the holder any more: leaves b alone
    assert store.holder == "b"


async def test_racing_candidates_on_a_free_lease_exactly_one_wins() -> None:
    store, clock, events = LeaseStore(), Clock(), []
    first, second = elector(store, clock, "a", events), elector(store, clock, "b", events)
    await first._attempt()
    await first.release()
    lease = await store.request("GET", "")
    original = store.request

    async def stale_get(method: str, path: str, **kwargs: Any) -> Any:
        return copy.deepcopy(lease) if method == "GET" else await original(method, path, **kwargs)

    store.request = stale_get  # type: ignore[method-assign]
    results = [await first._attempt(), await second._attempt()]  # both read the same resourceVersion
    assert sorted(results) == [False, True]


async def test_an_unreadable_lease_is_logged_once_and_never_leads(caplog: Any) -> None:
    store, clock, events = LeaseStore(), Clock(), []
    store.down = True
    candidate = elector(store, clock, "a", events)
    for _ in range(5):
        assert await candidate._attempt() is False
    problems = [r for r in caplog.records if "cannot read lease ns/lead" in r.getMessage()]
    assert len(problems) == 1 and not candidate.is_leader
    assert not candidate.settled and "connection refused" in candidate.details()["error"]
    store.down = False
    assert await candidate._attempt() is True
    assert candidate.settled and "error" not in candidate.details()
