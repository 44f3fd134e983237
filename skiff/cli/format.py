"""Docker's ways of showing times, sizes and tables, shared by every listing command."""

from __future__ import annotations

import time
from typing import Sequence

from skiff.timestamps import parse
from skiff.units import human_duration as human_duration  # re-exported: the listings' CREATED cells
from skiff.units import human_size as human_size  # re-exported: the listings' SIZE cells


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
