"""Leader election: a renewal counts from when it was sent, not from when its answer arrived."""

from __future__ import annotations

from typing import Any

from tests.unit.test_leader_election import SETTINGS, Clock, LeaseStore, elector


class SlowLeaseStore(LeaseStore):
    """The API server answers writes `delay` seconds (of the injected clock) after they were sent."""

    def __init__(self, clock: Clock, delay: float) -> None:
        super().__init__()
        self.clock, self.delay = clock, delay

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        answer = await super().request(method, path, **kwargs)
        if method in ("PUT", "POST"):
            self.clock.now += self.delay
        return answer


async def test_a_renewal_counts_from_when_it_was_sent_not_when_its_answer_came() -> None:
    clock = Clock()
    store = SlowLeaseStore(clock, delay=8.0)
    leader = elector(store, clock, "a", [])
    sent = clock.now
    assert await leader._attempt() is True  # created; the answer took 8 s
    leader._leading = True
    assert clock.now == sent + 8.0
    clock.now = sent + SETTINGS.renew_deadline - 0.1
    assert leader.is_leader
    clock.now = sent + SETTINGS.renew_deadline
    # Followers count the lease from when the server stored it (at or after `sent`): the leader
    # must stop writing by sent + renew deadline, not by the answer's arrival + renew deadline.
    assert not leader.is_leader

    clock.now += 1.0
    renewal_sent = clock.now
    assert await leader._attempt() is True  # a renewal, again answered 8 s late
    clock.now = renewal_sent + SETTINGS.renew_deadline
    assert not leader.is_leader
