"""How fast the agent sends requests to one API server.

    TokenBucket   client-go's `qps` and `burst`: a fixed rate (`kube_qps = N`)
    AdaptiveRate  the rate a bucket runs at when `kube_qps = 0` (the default): additive increase,
                  multiplicative decrease (AIMD), from what the server's answers show

The API server protects itself (API Priority and Fairness queues, then answers 429 with
Retry-After), so a fixed client rate is either the bound of a large sync or too high for a
struggling server. The adaptive rate starts where client-go's fixed one sits, doubles while
requests wait for it and the server answers quickly (slow start), and halves when the server
answers 429 or its writes become slow; after the first halving it grows by a fixed step
only. Reads and writes are paced alike; only writes' latency counts (a LIST of thousands
of objects is slow without anything being wrong).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

ADAPTIVE_START = 50.0  # requests per second at start: client-go's and Argo CD's usual fixed rate
ADAPTIVE_FLOOR = 5.0  # never slower than client-go's historical default, however often the server refuses
ADAPTIVE_CEILING = 1000.0  # never faster: a sanity bound far above what one API server writes per second
ADAPTIVE_STEP = 25.0  # added per window once the first decrease ended slow start
WINDOW = 0.25  # seconds of answers behind each decision
# A window's mean write latency above SLOW_WRITES seconds and RISE x the usual is congestion, judged
# on MIN_WRITES writes at least: with the agent's few requests in flight (max_concurrent_reconciles)
# a busy but healthy server answers in tenths of a second, and a few slow answers are noise.
SLOW_WRITES = 2.0
RISE = 4.0
MIN_WRITES = 8
BASELINE_CREEP = 1.02  # per window: the usual latency follows a lasting change (a slow admission webhook)
DECREASE_LOG_EVERY = 30.0  # seconds between two log lines about a lowered rate


@dataclass(frozen=True)
class Window:
    """What one window of answers showed."""

    held_back: bool  # some request waited for the rate: the rate, not the caller, was the bound
    throttled: int  # answers 429
    writes: int  # answered writes (2xx to 5xx other than 429)
    write_seconds: float  # their summed latency


@dataclass(frozen=True)
class RateState:
    rate: float
    slow_start: bool = True
    baseline: float | None = None  # the usual mean write latency, seconds


def next_rate(state: RateState, window: Window, *, floor: float = ADAPTIVE_FLOOR,
              ceiling: float = ADAPTIVE_CEILING) -> tuple[RateState, str]:
    """The rate for the next window, and why it changed ('' when it did not). Pure."""
    mean = window.write_seconds / window.writes if window.writes >= MIN_WRITES else None
    baseline = state.baseline
    if mean is not None:
        baseline = mean if baseline is None else min(mean, baseline * BASELINE_CREEP)
    slow = mean is not None and baseline is not None and mean > max(SLOW_WRITES, RISE * baseline)
    if window.throttled or slow:
        reason = f"{window.throttled} answers 429" if window.throttled else f"writes took {mean:.2f}s on average"
        return RateState(max(floor, state.rate / 2), slow_start=False, baseline=baseline), reason
    if window.held_back and state.rate < ceiling:
        grown = state.rate * 2 if state.slow_start else state.rate + ADAPTIVE_STEP
        return RateState(min(ceiling, grown), state.slow_start, baseline), "requests waited"
    return RateState(state.rate, state.slow_start, baseline), ""


class TokenBucket:
    """Up to `burst` requests at once, refilled at `rate` per second; waiters are served in order."""

    def __init__(self, rate: float, burst: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = asyncio.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def acquire(self) -> float:
        """Take one token, waiting for it if needed; returns how long it waited."""
        async with self._lock:  # one waiter at a time keeps the order fair
            self._refill()
            waited = 0.0
            if self._tokens < 1:
                waited = (1 - self._tokens) / self.rate
                self._held_back()
                await self._sleep(waited)
                self._refill()
            self._tokens -= 1
            return waited

    def _held_back(self) -> None:
        """A request waits for the rate (the adaptive bucket takes it as a sign to speed up)."""

    def answered(self, *, status: int, seconds: float, write: bool) -> None:
        """The server answered a request (status 0: it did not) after `seconds`; a fixed rate ignores it."""


class AdaptiveBucket(TokenBucket):
    """A token bucket whose rate follows `next_rate`, decided once per window of answers."""

    def __init__(self, burst: int, *, start: float = ADAPTIVE_START, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, name: str = "") -> None:
        super().__init__(start, burst, clock=clock, sleep=sleep)
        self.name = name  # the cluster, for the log
        self.decreases = 0
        self._state = RateState(start)
        self._window_started = clock()
        self._waited = False
        self._throttled = self._writes = 0
        self._write_seconds = 0.0
        self._logged_at: float | None = None

    def _held_back(self) -> None:
        self._waited = True
        self._roll()

    def answered(self, *, status: int, seconds: float, write: bool) -> None:
        if status == 429:
            self._throttled += 1
        elif write and status:
            self._writes += 1
            self._write_seconds += seconds
        self._roll()

    def _roll(self) -> None:
        """Decide on the window once it is over; the next one starts empty."""
        now = self._clock()
        if now - self._window_started < WINDOW:
            return
        window = Window(self._waited, self._throttled, self._writes, self._write_seconds)
        self._window_started, self._waited = now, False
        self._throttled = self._writes = 0
        self._write_seconds = 0.0
        before = self._state.rate
        self._state, reason = next_rate(self._state, window)
        self._refill()  # tokens earned so far at the old rate
        self.rate = self._state.rate
        if self.rate < before:
            self.decreases += 1
            self._log_decrease(before, reason, now)

    def _log_decrease(self, before: float, reason: str, now: float) -> None:
        """Once per DECREASE_LOG_EVERY: a server refusing for minutes must not fill the log."""
        if self._logged_at is not None and now - self._logged_at < DECREASE_LOG_EVERY:
            return
        self._logged_at = now
        log.warning("API server %s is congested (%s): request rate lowered from %.0f/s to %.0f/s",
                    self.name or "", reason, before, self.rate, extra={"cluster": self.name})


def make_limiter(qps: int, burst: int, *, name: str = "") -> TokenBucket:
    """The limiter `kube_qps`/`kube_burst` ask for: 0 qps adapts (AdaptiveBucket), more is a fixed rate."""
    return AdaptiveBucket(burst, name=name) if qps == 0 else TokenBucket(qps, burst)
