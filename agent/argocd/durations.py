"""Durations as Argo CD reads `retry.backoff`: a bare integer is seconds, anything else is Go's
`time.ParseDuration` (`5s`, `3m`, `1h30m`, `1.5h`, `300ms`, `2us`)."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Seconds in `text`; ValueError for anything Argo CD would not parse, or a negative duration."""
    if re.fullmatch(r"[+-]?\d+", text):
        seconds = float(int(text))
    elif text in ("0", "+0", "-0"):
        seconds = 0.0
    else:
        body = text[1:] if text[:1] in "+-" else text
        pos, seconds = 0, 0.0
        for match in _PART.finditer(body):
            if match.start() != pos:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            pos = match.end()
        if not body or pos != len(body):
            raise ValueError(f"{text!r} is not a duration (examples: 5, 5s, 3m, 1h30m)")
        if text.startswith("-"):
            seconds = -seconds
    if seconds < 0:
        raise ValueError(f"{text!r} is negative")
    return seconds
