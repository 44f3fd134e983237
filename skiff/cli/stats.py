"""``skiff stats`` output: Docker's table and the fields of ``--format`` (``{{.NetIO}}``...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from skiff.units import bytes_size as bytes_size  # re-exported: MEM USAGE (binary), also system df's
from skiff.units import human_size  # NET I/O and BLOCK I/O: decimal, 3 digits

if TYPE_CHECKING:
    from skiff.engine.stats import StatsRow

HEADERS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]


def stats_fields(row: StatsRow, host_memory: int | None = None) -> dict[str, str]:
    """One container's fields as Docker's stats context names them (``--format json`` prints them)."""
    from skiff.engine.stats import cpu_percent, host_memory_bytes, memory_limit_shown

    current = row.current
    limit = memory_limit_shown(current, host_memory if host_memory is not None else host_memory_bytes())
    return {"ID": row.container_id[:12], "Name": row.name,
            "CPUPerc": f"{cpu_percent(row.previous, current):.2f}%",
            "MemUsage": f"{bytes_size(current.memory_usage)} / {bytes_size(limit)}",
            "MemPerc": f"{current.memory_usage / limit * 100.0 if limit else 0.0:.2f}%",
            "NetIO": f"{human_size(row.net_rx)} / {human_size(row.net_tx)}",
            "BlockIO": f"{human_size(current.block_read)} / {human_size(current.block_write)}",
            "PIDs": str(current.pids_current)}


def format_stats(rows: list[StatsRow], host_memory: int | None = None) -> str:
    """Docker's default ``stats`` table (skiff.engine.stats.StatsRow rows)."""
    if host_memory is None:
        from skiff.engine.stats import host_memory_bytes

        host_memory = host_memory_bytes()
    table = [HEADERS]
    for row in rows:
        fields = stats_fields(row, host_memory)
        table.append([fields["ID"], fields["Name"], fields["CPUPerc"], fields["MemUsage"], fields["MemPerc"],
                      fields["NetIO"], fields["BlockIO"], fields["PIDs"]])
    return _tabulate(table)


def _tabulate(table: list[list[str]]) -> str:
    """Go's tabwriter as Docker configures it: minwidth 10, padding 3."""
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    lines = []
    for line in table:
        cells = [cell.ljust(max(widths[i] + 3, 10)) for i, cell in enumerate(line[:-1])]
        lines.append("".join(cells) + line[-1])
    return "\n".join(lines) + "\n"
