"""RFC 3339 timestamps as Docker writes them: UTC with nanoseconds (``2026-11-28T18:52:57.123456789Z``)."""

from __future__ import annotations

import functools  # already loaded by the command line's argparse: no start-up cost
import time


def now() -> str:
    ns = time.time_ns()
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000))
    return f"{seconds}.{ns % 1_000_000_000:09d}Z"


@functools.lru_cache(maxsize=4096)  # a listing parses the same Created and StartedAt on every call
def parse(stamp: str) -> float:
    """Seconds since the epoch; ValueError for text that is not RFC 3339."""
    return _parse(stamp)


def _parse(stamp: str) -> float:
    from datetime import datetime

    stamp = stamp.replace("Z", "+00:00")
    if "." in stamp:  # Python 3.11 accepts at most 6 fractional digits
        head, _, rest = stamp.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        stamp = f"{head}.{digits[:6]}{rest[len(digits):]}"
    return datetime.fromisoformat(stamp).timestamp()
