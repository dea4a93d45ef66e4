"""/readyz's API-server check: one request per second, however many callers."""

from __future__ import annotations

import asyncio

import pytest

from agent.server.probe import SharedProbe


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_callers_share_one_check_and_its_answer_lasts_a_second() -> None:
    clock, answered = Clock(), asyncio.Event()
    calls = 0

    async def check() -> str:
        nonlocal calls
        calls += 1
        await answered.wait()
        return f"v1.34.{calls}"

    probe = SharedProbe(check, clock=clock)
    waiting = [asyncio.ensure_future(probe()) for _ in range(1500)]
    await asyncio.sleep(0)
    answered.set()
    assert set(await asyncio.gather(*waiting)) == {"v1.34.1"} and calls == 1
    clock.now += 0.9
    assert await probe() == "v1.34.1" and calls == 1
    clock.now += 0.2
    assert await probe() == "v1.34.2" and calls == 2


async def test_a_failure_is_shared_too_and_a_caller_leaving_does_not_cancel_the_check() -> None:
    clock, answered = Clock(), asyncio.Event()

    async def check() -> str:
        await answered.wait()
        raise ConnectionError("API server unreachable")

    probe = SharedProbe(check, clock=clock)
    impatient = asyncio.ensure_future(probe())
    patient = asyncio.ensure_future(probe())
    await asyncio.sleep(0)
    impatient.cancel()
    answered.set()
    with pytest.raises(ConnectionError):
        await patient
    with pytest.raises(ConnectionError):
        await probe()  # within the second: the same failure, no new request
    assert probe.checks == 1
