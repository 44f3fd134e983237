"""RFC 3339 timestamps as Docker writes them: UTC with nanoseconds (``2026-11-28T18:52:57.123456789Z``)."""

from __future__ import annotations

import time


def now() -> str:
    ns = time.time_ns()
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{seconds}.{ns % 1_000_000_000:09d}Z"


_PARSED: dict[str, float] = {}  # a listing parses the same Created and StartedAt on every call


def parse(stamp: str) -> float:
    """Seconds since the epoch; ValueError for text that is not RFC 3339."""
    seconds = _PARSED.get(stamp)
    if seconds is None:
        seconds = _parse(stamp)
        if len(_PARSED) >= 4096:  # a long-lived server: keep it small
            _PARSED.clear()
        _PARSED[stamp] = seconds
    return seconds


def _parse(stamp: str) -> float:
    from datetime import datetime

    stamp = stamp.replace("Z", "+00:00")
    if "." in stamp:  # Python 3.11 accepts at most 6 fractional digits
        head, _, rest = stamp.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        stamp = f"{head}.{digits[:6]}{rest[len(digits):]}"
    return datetime.fromisoformat(stamp).timestamp()
