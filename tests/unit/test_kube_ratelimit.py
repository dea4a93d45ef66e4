import asyncio

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
