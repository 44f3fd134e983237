"""Resource usage of one container, and Docker's ``stats`` table built from two samples."""

from __future__ import annotations

from collections import namedtuple

# A v1 limit at or above this is the kernel's "unlimited" (PAGE_COUNTER_MAX rounded to pages).
UNLIMITED_THRESHOLD = 1 << 62


# Named tuples rather than dataclasses keep ``import skiff.cgroups`` cheap (see detect.py).
class Stats(namedtuple("Stats", "cpu_usage_ns memory_usage memory_limit pids_current pids_limit taken_ns")):
    """One sample of a container's usage.

    ``cpu_usage_ns``: CPU time used so far; ``memory_usage``: bytes, without
    inactive page cache, as ``docker stats`` shows it; ``memory_limit`` and
    ``pids_limit``: None when unlimited; ``taken_ns``: time.monotonic_ns() of
    the sample, for CPU %.
    """

    __slots__ = ()
    cpu_usage_ns: int
    memory_usage: int
    memory_limit: int | None
    pids_current: int
    pids_limit: int | None
    taken_ns: int


class StatsRow(namedtuple("StatsRow", "container_id name previous current")):
    """What ``format_stats`` needs to print one container: two samples of it."""

    __slots__ = ()
    container_id: str
    name: str
    previous: Stats
    current: Stats


def cpu_percent(previous: Stats, current: Stats) -> float:
    """Share of one CPU used between the samples, as Docker computes it.

    Docker divides the container's CPU time by the host's (all CPUs) and
    multiplies by the CPU count; over the same interval that equals CPU time over
    wall time, which is what is measured here.
    """
    wall = current.taken_ns - previous.taken_ns
    used = current.cpu_usage_ns - previous.cpu_usage_ns
    if wall <= 0 or used < 0:
        return 0.0
    return used / wall * 100.0


def memory_limit_shown(stats: Stats, host_memory: int) -> int:
    if stats.memory_limit is None or stats.memory_limit >= host_memory:
        return host_memory
    return stats.memory_limit


def bytes_size(size: float) -> str:
    """Docker's ``units.BytesSize``: binary units, four significant digits."""
    units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    index = 0
    while size >= 1024 and index < len(units) - 1:
        size /= 1024
        index += 1
    return f"{size:.4g}{units[index]}"


def host_memory_bytes() -> int:
    with open("/proc/meminfo", encoding="ascii") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def format_stats(rows: list[StatsRow], host_memory: int | None = None) -> str:
    """Docker's ``stats`` table: CONTAINER ID, NAME, CPU %, MEM USAGE / LIMIT, MEM %, PIDS."""
    if host_memory is None:
        host_memory = host_memory_bytes()
    table = [["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]]
    for row in rows:
        limit = memory_limit_shown(row.current, host_memory)
        mem_pct = row.current.memory_usage / limit * 100.0 if limit else 0.0
        table.append([
            row.container_id[:12],
            row.name,
            f"{cpu_percent(row.previous, row.current):.2f}%",
            f"{bytes_size(row.current.memory_usage)} / {bytes_size(limit)}",
            f"{mem_pct:.2f}%",
            str(row.current.pids_current),
        ])
    return _tabulate(table)


def _tabulate(table: list[list[str]]) -> str:
    """Go's tabwriter as Docker configures it: minwidth 10, padding 3."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for line in table:
        cells = [cell.ljust(max(widths[i] + 3, 10)) for i, cell in enumerate(line[:-1])]
        lines.append("".join(cells) + line[-1])
    return "\n".join(lines) + "\n"
