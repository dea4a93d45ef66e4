import asyncio
from dataclasses import replace

import pytest

from agent.kube.client import MAX_RETRY_AFTER, _retry_after
from agent.kube.ratelimit import (
    ADAPTIVE_CEILING,
    ADAPTIVE_FLOOR,
    ADAPTIVE_START,
    ADAPTIVE_STEP,
    MIN_WRITES,
    WINDOW,
    AdaptiveBucket,
    RateState,
    TokenBucket,
    Window,
    make_limiter,
    next_rate,
)


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
    clock = FakeClock()  # on the real clock, a busy machine may refill a token between two waiters
    bucket = TokenBucket(rate=1000, burst=1, clock=clock, sleep=clock.sleep)
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


# ---------------------------------------------------------------- the adaptive rate (kube_qps = 0)

QUICK = Window(held_back=True, throttled=0, writes=50, write_seconds=50 * 0.02)


def test_slow_start_doubles_while_requests_wait_and_the_server_is_quick() -> None:
    state = RateState(50.0)
    rates = []
    for _ in range(4):
        state, reason = next_rate(state, QUICK)
        rates.append(state.rate)
        assert reason == "requests waited"
    assert rates == [100.0, 200.0, 400.0, 800.0]
    assert next_rate(RateState(800.0), QUICK)[0].rate == ADAPTIVE_CEILING  # never above the ceiling


def test_the_rate_holds_when_nothing_waited_for_it() -> None:
    idle = replace(QUICK, held_back=False)
    state, reason = next_rate(RateState(50.0), idle)
    assert (state.rate, reason) == (50.0, "")


def test_a_429_halves_the_rate_and_ends_slow_start() -> None:
    state, reason = next_rate(RateState(400.0), replace(QUICK, throttled=3))
    assert (state.rate, state.slow_start) == (200.0, False)
    assert reason == "3 answers 429"
    state, _ = next_rate(state, QUICK)  # then it grows by a step, not by doubling
    assert state.rate == 200.0 + ADAPTIVE_STEP


def test_halving_stops_at_the_floor() -> None:
    state = RateState(8.0, slow_start=False)
    for _ in range(3):
        state, _ = next_rate(state, replace(QUICK, throttled=1))
    assert state.rate == ADAPTIVE_FLOOR


def test_writes_far_slower_than_usual_halve_the_rate() -> None:
    state, _ = next_rate(RateState(400.0), QUICK)  # writes usually take 20 ms; the rate doubled to 800
    slow = replace(QUICK, write_seconds=50 * 2.5)
    state, reason = next_rate(state, slow)
    assert state.rate == 400.0 and not state.slow_start
    assert reason == "writes took 2.50s on average"
    few = replace(QUICK, writes=MIN_WRITES - 1, write_seconds=(MIN_WRITES - 1) * 9.0)
    assert next_rate(state, few)[0].rate > state.rate, "too few writes to judge their latency"


def test_writes_that_are_always_slow_are_the_usual_not_congestion() -> None:
    """A cluster whose every write takes 3 s (a slow admission webhook) is not throttled to the floor."""
    always = replace(QUICK, write_seconds=50 * 3.0)
    state = RateState(50.0)
    for _ in range(3):
        state, reason = next_rate(state, always)
        assert reason == "requests waited"
    assert state.rate == 400.0


async def test_the_adaptive_bucket_speeds_up_under_demand_and_slows_down_on_429() -> None:
    clock = FakeClock()
    bucket = AdaptiveBucket(burst=10, clock=clock, sleep=clock.sleep)
    assert bucket.rate == ADAPTIVE_START
    for _ in range(300):  # far more demand than the rate: requests wait; the server answers at once
        await bucket.acquire()
        bucket.answered(status=201, seconds=0.01, write=True)
    peak = bucket.rate
    assert peak >= 8 * ADAPTIVE_START  # 50 → 100 → 200 → 400 within the first second
    clock.now += WINDOW
    bucket.answered(status=429, seconds=0.01, write=True)
    assert bucket.rate == peak / 2 and bucket.decreases == 1


def test_kube_qps_zero_adapts_and_a_number_is_a_fixed_rate() -> None:
    assert isinstance(make_limiter(0, 100), AdaptiveBucket)
    fixed = make_limiter(20, 40)
    assert not isinstance(fixed, AdaptiveBucket) and (fixed.rate, fixed.burst) == (20, 40)
    fixed.answered(status=429, seconds=5.0, write=True)
    assert fixed.rate == 20
