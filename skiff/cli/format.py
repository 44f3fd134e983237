"""Docker's ways of showing times, sizes and tables, shared by every listing command."""

from __future__ import annotations

import time
from typing import Sequence

from skiff.timestamps import parse
from skiff.units import human_size as human_size  # re-exported: the listings' SIZE cells


def human_duration(seconds: float) -> str:
    """Docker's go-units HumanDuration: 'Less than a second', '3 minutes', 'About an hour'."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def time_ago(stamp: str, now: float | None = None) -> str:
    return f"{human_duration((now or time.time()) - parse(stamp))} ago"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], min_width: int = 0) -> str:
    """Left-aligned columns separated by at least three spaces, as Docker's tabwriter prints;
    ``min_width``: its minwidth, the least a column takes with its padding."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    widths = [max(w, min_width - 3) for w in widths]
    lines = []
    for row in [headers, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("   ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)
