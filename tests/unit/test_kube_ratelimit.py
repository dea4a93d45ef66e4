import asyncio

import pytest

from agent.kube.client import MAX_RETRY_AFTER, _retry_after
from agent.kube.ratelimit import TokenBucket


class FakeClock:
    """Loop-free time: sleeping moves the clock, so the test is exact and instant."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_burst_passes_at_once_then_requests_are_paced_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=3, clock=clock, sleep=clock.sleep)
    waits = [await bucket.acquire() for _ in range(5)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert [round(w, 6) for w in waits[3:]] == [0.1, 0.1]
    assert round(clock.now - 100.0, 6) == 0.2


async def test_idle_time_refills_up_to_burst_only() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=2, burst=2, clock=clock, sleep=clock.sleep)
    for _ in range(2):
        await bucket.acquire()
    clock.now += 60  # a long pause earns at most `burst` tokens
    assert [await bucket.acquire() for _ in range(2)] == [0.0, 0.0]
    assert round(await bucket.acquire(), 6) == 0.5


async def test_concurrent_waiters_are_all_served() -> None:
    bucket = TokenBucket(rate=1000, burst=1)
    results = await asyncio.gather(*(bucket.acquire() for _ in range(20)))
    assert len(results) == 20 and results[0] == 0.0 and all(w > 0 for w in results[1:])


async def test_waiters_are_served_in_arrival_order_one_interval_apart() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4, burst=1, clock=clock, sleep=clock.sleep)
    served: list[tuple[int, float]] = []

    async def take(i: int) -> None:
        await bucket.acquire()
        served.append((i, clock.now - 100.0))

    await asyncio.gather(*(take(i) for i in range(5)))
    assert [i for i, _ in served] == [0, 1, 2, 3, 4]
    assert [round(at, 6) for _, at in served] == [0.0, 0.25, 0.5, 0.75, 1.0]


async def test_a_cancelled_waiter_takes_no_token() -> None:
    clock = FakeClock()
    sleeping, woken = asyncio.Event(), asyncio.Event()

    async def blocking_sleep(seconds: float) -> None:
        clock.slept.append(seconds)
        sleeping.set()
        await woken.wait()

    bucket = TokenBucket(rate=1, burst=1, clock=clock, sleep=blocking_sleep)
    assert await bucket.acquire() == 0.0
    waiter = asyncio.create_task(bucket.acquire())
    await sleeping.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    clock.now += 1.0  # one token earned meanwhile: it is still there for the next request
    assert await bucket.acquire() == 0.0


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (1, 0)])
def test_rate_and_burst_must_be_positive(rate: float, burst: int) -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=rate, burst=burst)


@pytest.mark.parametrize(("header", "seconds"), [
    (None, 1.0),  # no header: one second, as kube-apiserver would say
    ("", 1.0),
    ("1", 1.0),
    ("3", 3.0),
    ("2.5", 2.5),
    (" 2 ", 2.0),
    ("0", 0.0),
    ("-5", 0.0),
    ("soon", 1.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 1.0),  # an HTTP date (the API server never sends one)
    ("86400", MAX_RETRY_AFTER),
    ("inf", MAX_RETRY_AFTER),
    ("nan", 1.0),  # float() accepts it; sleeping NaN seconds would never end
])
def test_retry_after_header(header: str | None, seconds: float) -> None:
    assert _retry_after(header) == seconds
