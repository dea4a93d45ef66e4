"""What a benchmark tells the person running it: progress on stderr, and failures meant for them."""

from __future__ import annotations

import sys


class BenchError(Exception):
    """A failure whose message is meant for the user: printed without a traceback."""


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)
