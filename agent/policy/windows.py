"""Sync windows: may an app sync now, and if not, when? Pure, with the clock passed in.

Argo CD's rules (`SyncWindows.Matches` and `CanSync`), over the windows that match the app:

- a window matches through `applications` (the app's name), `clusters` (server or name)
  or `namespaces` (the destination namespace): any one of them, globs without negation;
- no matching window: allowed;
- an active `deny` window blocks; a manual sync goes through only when every active deny
  window has `manual_sync = true`;
- otherwise, when `allow` windows match but none is active, blocked; a manual sync goes
  through only when every one of them has `manual_sync = true`;
- otherwise allowed.

A window is active from each time its cron `schedule` fires (in its `time_zone`) for its
`duration`. A window that cannot be read (bad cron, duration or zone) blocks: never sync on
doubt. When a sync is blocked, `opens_at` is the first moment within about a year at which
the same request would be allowed.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from agent.model import SyncWindow
from agent.policy.globs import glob_match
from agent.policy.projects import IN_CLUSTER_NAME, IN_CLUSTER_SERVER

HORIZONS = (timedelta(days=8), timedelta(days=366))  # how far ahead `opens_at` is looked for: a week, then a year
HORIZON = HORIZONS[-1]
MAX_OCCURRENCES = 2000  # per window and decision: a `* * * * *` window is cut off after about a day and a half

_GO_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


class InvalidWindow(ValueError):
    """A window's schedule, duration, kind or time zone cannot be read."""


@dataclass(frozen=True)
class WindowDecision:
    allowed: bool
    reason: str = ""  # why not (or which window lets a manual sync through); "" when no window matters
    opens_at: float | None = None  # blocked: when the same sync would be allowed (None: not within the horizon)
    windows: tuple[SyncWindow, ...] = ()  # the matching windows active now


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (`1h`, `30m`, `1h30m`, `90s`, `1.5h`), as Argo CD reads `duration`."""
    position, total = 0, 0.0
    for match in _GO_DURATION.finditer(text):
        if match.start() != position:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    if not text or position != len(text):
        raise InvalidWindow(f"duration {text!r} is not a duration (examples: 1h, 30m, 1h30m)")
    return total


def check_window(window: SyncWindow) -> None:
    """Raise InvalidWindow naming what is wrong with one window (configuration checks it up front)."""
    if window.kind not in ("allow", "deny"):
        raise InvalidWindow(f"kind {window.kind!r} must be allow or deny")
    _zone(window)
    if parse_go_duration(window.duration) <= 0:
        raise InvalidWindow(f"duration {window.duration!r} must be longer than zero")
    if len(window.schedule.split()) != 5:
        raise InvalidWindow(f"schedule {window.schedule!r} must be a cron expression of five fields "
                            "(minute hour day-of-month month day-of-week)")
    try:
        CronSim(window.schedule, datetime.now(UTC))
    except CronSimError as exc:
        raise InvalidWindow(f"schedule {window.schedule!r} is not a cron expression: {exc}") from exc
    if not (window.applications or window.namespaces or window.clusters):
        raise InvalidWindow("a window needs applications, namespaces or clusters to apply to")


def matching(windows: Iterable[SyncWindow], *, app: str, namespace: str, server: str = IN_CLUSTER_SERVER,
             cluster_name: str = IN_CLUSTER_NAME) -> tuple[SyncWindow, ...]:
    """The windows that apply to an app: by name, by cluster, or by destination namespace."""
    def applies(window: SyncWindow) -> bool:
        return (any(glob_match(pattern, app) for pattern in window.applications)
                or any((cluster_name and glob_match(pattern, cluster_name)) or (server and glob_match(pattern, server))
                       for pattern in window.clusters)
                or any(glob_match(pattern, namespace) for pattern in window.namespaces))
    return tuple(window for window in windows if applies(window))


def decide(windows: Sequence[SyncWindow], *, app: str, namespace: str, now: float, manual: bool,
           server: str = IN_CLUSTER_SERVER, cluster_name: str = IN_CLUSTER_NAME, project: str = "") -> WindowDecision:
    """May the app sync at `now` (seconds since the epoch)? `manual`: asked for by a person."""
    relevant = matching(windows, app=app, namespace=namespace, server=server, cluster_name=cluster_name)
    if not relevant:
        return WindowDecision(True)
    at = datetime.fromtimestamp(now, UTC)
    try:
        # Only what is open now decides; how long a block lasts is looked up when there is one.
        spans = {window: _spans(window, at - _duration(window), at + timedelta(seconds=1)) for window in relevant}
        allowed, reason, active = _verdict(relevant, spans, at, manual=manual)
        if allowed:
            return WindowDecision(True, reason, windows=active)
        opens = None
        for horizon in HORIZONS:
            spans = {window: _spans(window, at - _duration(window), at + horizon) for window in relevant}
            opens = _opening(relevant, spans, at, manual=manual)
            if opens is not None:
                break
    except InvalidWindow as exc:
        return WindowDecision(False, f"sync windows of project {project or '?'} cannot be read: {exc}")
    when = f"; syncs are allowed again at {opens.isoformat()}" if opens else \
        f"; no opening within {HORIZON.days} days"
    owner = f" of project {project}" if project else ""
    return WindowDecision(False, f"{reason}{owner}{when}", opens.timestamp() if opens else None, active)


# ----------------------------------------------------------------------- the verdict at one instant


Span = tuple[datetime, datetime]


def _verdict(windows: Sequence[SyncWindow], spans: dict[SyncWindow, list[Span]], at: datetime, *,
             manual: bool) -> tuple[bool, str, tuple[SyncWindow, ...]]:
    active = tuple(window for window in windows if _active(spans[window], at))
    denies = [window for window in active if window.kind == "deny"]
    if denies:
        if manual and all(window.manual_sync for window in denies):
            return True, f"manual sync allowed during {describe(denies[0])}", active
        return False, f"sync blocked by {describe(denies[0])}", active
    if any(window.kind == "allow" for window in active):
        return True, "", active
    closed = [window for window in windows if window.kind == "allow"]
    if closed:
        if manual and all(window.manual_sync for window in closed):
            return True, f"manual sync allowed outside {describe(closed[0])}", active
        return False, f"sync blocked: outside {describe(closed[0])}", active
    return True, "", active


def _opening(windows: Sequence[SyncWindow], spans: dict[SyncWindow, list[Span]], at: datetime, *,
             manual: bool) -> datetime | None:
    """The first window boundary after `at` at which the verdict turns to allowed."""
    boundaries = sorted({edge for window in windows for span in spans[window] for edge in span if edge > at})
    for moment in boundaries:
        if _verdict(windows, spans, moment, manual=manual)[0]:
            return moment
    return None


def _active(spans: list[Span], at: datetime) -> bool:
    """Whether `at` lies in one of the (sorted, disjoint) spans."""
    index = bisect.bisect_right(spans, at, key=lambda span: span[0]) - 1
    return index >= 0 and at < spans[index][1]


def _spans(window: SyncWindow, since: datetime, until: datetime) -> list[Span]:
    """The window's active periods starting after `since` (so one still running at `now` is included)
    and before `until`, in UTC, sorted; overlapping ones (a duration longer than the period) merged."""
    check_window(window)
    zone, length = _zone(window), _duration(window)
    spans: list[Span] = []
    for fired in CronSim(window.schedule, since.astimezone(zone)):
        start = fired.astimezone(UTC)
        if start >= until or len(spans) >= MAX_OCCURRENCES:
            break
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], start + length))
        else:
            spans.append((start, start + length))
    return spans


def _duration(window: SyncWindow) -> timedelta:
    return timedelta(seconds=parse_go_duration(window.duration))


def _zone(window: SyncWindow) -> ZoneInfo:
    try:
        return ZoneInfo(window.time_zone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidWindow(f"time zone {window.time_zone!r} is not known (examples: UTC, Europe/Berlin)") from exc


def describe(window: SyncWindow) -> str:
    """`deny window "0 22 * * *" for 8h (Europe/Berlin)`: how conditions and logs name a window."""
    return f"{window.kind} window {window.schedule!r} for {window.duration} ({window.time_zone or 'UTC'})"
